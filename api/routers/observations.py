"""`POST /api/v1/observations`: a sensor's batch, idempotent by batch id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from api.deps import Sensor, ServicesDep
from correlator.ingest import BatchError

router = APIRouter(prefix="/api/v1/observations", tags=["observations"])


class BatchIn(BaseModel):
    batch_id: str = Field(
        min_length=8,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="unique per batch; a retry with the same id is a no-op",
    )
    observations: list[dict[str, Any]] = Field(description="ECS observation documents")


class BatchOut(BaseModel):
    batch_id: str
    observations: int
    alerts: int
    duplicate: bool


@router.post("", response_model=BatchOut)
def ingest(batch: BatchIn, services: ServicesDep, principal: Sensor) -> BatchOut:
    for n, doc in enumerate(batch.observations):
        observer = (
            doc.get("observer", {}).get("name")
            if isinstance(doc.get("observer"), dict)
            else doc.get("observer.name")
        )
        if principal.role == "sensor" and observer not in (None, principal.name):
            raise HTTPException(
                403, f"observations[{n}]: sensor {principal.name!r} may not report as {observer!r}"
            )
    try:
        result = services.ingest.ingest(batch.batch_id, batch.observations)
    except BatchError as exc:
        raise HTTPException(422, str(exc)) from None
    return BatchOut(
        batch_id=result.batch_id,
        observations=result.observations,
        alerts=result.alerts,
        duplicate=result.duplicate,
    )
