"""An entity's notification preferences: immediate or a daily digest, per RSIT class."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.inputs import Input

Mode = Literal["immediate", "digest"]


class NotifyPrefsIn(Input):
    default: Mode = Field(description="for the classes not listed")
    classes: dict[str, Mode] = Field(
        default_factory=dict, max_length=20, description="RSIT class → mode"
    )


class NotifyPrefsOut(BaseModel):
    entity_id: str
    default: Mode
    classes: dict[str, Mode]
