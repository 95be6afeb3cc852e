"""`/api/v1/sensors`: heartbeats in (sensor tokens), the fleet's state out (CERT staff)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from api.deps import SessionDep, require
from api.inputs import MAX_ID, Name
from correlator.fleet import list_sensors, record_heartbeat
from vigia.core.tokens import Principal, Role

router = APIRouter(prefix="/api/v1/sensors", tags=["sensors"])


class HeartbeatIn(BaseModel):
    observer: Name = Field(min_length=1, max_length=200)
    counters: dict[
        Annotated[str, Field(max_length=100)], Annotated[int, Field(ge=0, le=MAX_ID)]
    ] = Field(max_length=200)
    last_refusal: str | None = Field(
        None, max_length=1000, description="the last refusal the sensor met, e.g. '403 ...'"
    )


@router.post("/heartbeat")
def heartbeat(
    body: HeartbeatIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.SENSOR, Role.ADMIN))],
) -> dict[str, str]:
    if principal.role is Role.SENSOR and body.observer != principal.name:
        raise HTTPException(403, f"sensor {principal.name!r} may not report as {body.observer!r}")
    row = record_heartbeat(session, body.observer, body.counters, body.last_refusal)
    return {"observer": row.name, "status": "ok"}


@router.get("")
def fleet(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.ADMIN, Role.ANALYST, Role.AUDITOR))],
) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "first_seen": r.first_seen.isoformat(),
            "last_seen": r.last_seen.isoformat(),
            "counters": r.counters,
            "last_refusal": r.last_refusal,
        }
        for r in list_sensors(session)
    ]
