"""`/health`: the one open route (liveness for load balancers and `vigia up`)."""

from __future__ import annotations

from fastapi import APIRouter

from api.schemas.ops import Health

router = APIRouter()


@router.get("/health", response_model=Health)
def health() -> Health:
    return Health(status="ok")
