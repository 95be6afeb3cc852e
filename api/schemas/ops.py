"""Liveness and readiness."""

from __future__ import annotations

from pydantic import BaseModel

from api.schemas.common import Open


class Health(BaseModel):
    status: str


class Ready(Open):
    """`ready`, or `unavailable` (503) with what is missing."""

    status: str
