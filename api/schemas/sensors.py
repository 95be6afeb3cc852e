"""Sensors: observation batches, heartbeats and the fleet."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from api.inputs import MAX_ID, Name


class BatchEnvelope(BaseModel):
    """What is checked of a batch on arrival; each observation is then validated by
    the observation contract (Observation.from_ecs), so pydantic does not copy them."""

    batch_id: str = Field(
        min_length=8,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="unique per batch; a retry with the same id is a no-op",
    )
    observations: list[Any]


class BatchIn(BatchEnvelope):
    """The batch as documented in the OpenAPI schema."""

    observations: list[dict[str, Any]] = Field(description="ECS observation documents")


class BatchOut(BaseModel):
    batch_id: str
    observations: int
    alerts: int
    duplicate: bool


class HeartbeatIn(BaseModel):
    observer: Name = Field(min_length=1, max_length=200)
    counters: dict[
        Annotated[str, Field(max_length=100)], Annotated[int, Field(ge=0, le=MAX_ID)]
    ] = Field(max_length=200)
    last_refusal: str | None = Field(
        None, max_length=1000, description="the last refusal the sensor met, e.g. '403 ...'"
    )


class HeartbeatOut(BaseModel):
    observer: str
    status: str


class SensorOut(BaseModel):
    name: str
    first_seen: str
    last_seen: str
    counters: dict[str, int]
    last_refusal: str | None
