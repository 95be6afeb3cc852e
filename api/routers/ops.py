"""Operations: `/metrics` (Prometheus text; a token of an admin or auditor, as a
scrape's bearer) and `/ready` (open, like `/health`: 503 while the store is out)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api import operations
from api.deps import Auditor, ServicesDep, SessionDep
from api.schemas.ops import Ready

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(services: ServicesDep, session: SessionDep, principal: Auditor) -> Response:
    return Response(operations.metrics_text(services, session), media_type=CONTENT_TYPE_LATEST)


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
def ready(services: ServicesDep) -> Ready | JSONResponse:
    ok, detail = operations.ready(services)
    if ok:
        return Ready(status="ready", **detail)
    return JSONResponse(
        {"status": "unavailable", **detail}, status_code=503, headers={"Retry-After": "5"}
    )
