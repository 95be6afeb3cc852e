"""`/api/v1/sensors`: heartbeats in (sensor tokens), the fleet's state out (CERT staff)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from api.deps import SessionDep, require
from api.schemas.sensors import HeartbeatIn, HeartbeatOut, SensorOut
from core.tokens import Principal, Role
from correlator.fleet import list_sensors, record_heartbeat

router = APIRouter(prefix="/api/v1/sensors", tags=["sensors"])


@router.post("/heartbeat", response_model=HeartbeatOut)
def heartbeat(
    body: HeartbeatIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.SENSOR, Role.ADMIN))],
) -> HeartbeatOut:
    if principal.role is Role.SENSOR and body.observer != principal.name:
        raise HTTPException(403, f"sensor {principal.name!r} may not report as {body.observer!r}")
    row = record_heartbeat(session, body.observer, body.counters, body.last_refusal)
    return HeartbeatOut(observer=row.name, status="ok")


@router.get("", response_model=list[SensorOut])
def fleet(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.ADMIN, Role.ANALYST, Role.AUDITOR))],
) -> list[SensorOut]:
    return [
        SensorOut(
            name=r.name,
            first_seen=r.first_seen.isoformat(),
            last_seen=r.last_seen.isoformat(),
            counters=r.counters,
            last_refusal=r.last_refusal,
        )
        for r in list_sensors(session)
    ]
