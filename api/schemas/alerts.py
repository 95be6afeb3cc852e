"""Alerts: ECS documents with the threat enrichment that matched."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.inputs import Input, Text
from api.schemas.common import Open


class AlertOut(Open):
    """An alert as an ECS document (`event.id` is its id; `threat.enrichments` the match)."""

    event: dict[str, Any]
    threat: dict[str, Any] = Field(default_factory=dict)


class AlertPage(BaseModel):
    alerts: list[AlertOut]
    next_cursor: str | None


class StatusIn(Input):
    status: Literal["new", "acknowledged", "dismissed"]
    reason: Text | None = Field(default=None, max_length=5000)
