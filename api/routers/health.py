"""`/health`: the one open route (liveness for load balancers and `vigia up`)."""

from __future__ import annotations

from fastapi import APIRouter

from api.schemas.ops import Health

router = APIRouter()


@router.get("/health", response_model=Health)
async def health() -> Health:
    # On the event loop, not the worker threads: it does no I/O, and liveness must
    # answer while uploads and imports keep every worker busy.
    return Health(status="ok")
