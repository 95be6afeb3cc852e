"""Incident metrics (JSON or CSV) and exports (MISP event, STIX 2.1 bundle), for CERT staff.

Mounted before the incident router so that `/metrics` is not read as an id."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from api.access import visible
from api.deps import ServicesDep, SessionDep, Staff
from api.inputs import Id
from api.schemas.common import CSV
from api.schemas.incidents import Metrics, MispEvent, StixBundle
from core.clock import utcnow
from incidents import export, metrics

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@router.get("/metrics", response_model=Metrics, responses=CSV)
def incident_metrics(
    session: SessionDep,
    principal: Staff,
    since: Annotated[datetime | None, Query(description="opened at or after")] = None,
    until: Annotated[datetime | None, Query(description="opened before")] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response | Metrics:
    """Times to detect/acknowledge/contain/resolve and SLA breaches (default: 90 days)."""
    now = utcnow()
    rows = metrics.times(session, since or now - timedelta(days=90), until or now, now)
    if format == "csv":
        return Response(
            metrics.to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="incidentes.csv"'},
        )
    return Metrics.model_validate(metrics.summary(rows))


@router.get("/{incident_id}/export/misp", response_model=MispEvent)
def export_misp(
    incident_id: Id, session: SessionDep, principal: Staff, services: ServicesDep
) -> MispEvent:
    inc = visible(session, principal, incident_id)
    return MispEvent.model_validate(export.to_misp(session, inc, services.settings.observer_name))


class StixResponse(JSONResponse):
    media_type = "application/stix+json;version=2.1"


@router.get("/{incident_id}/export/stix", response_model=StixBundle, response_class=StixResponse)
def export_stix(
    incident_id: Id, session: SessionDep, principal: Staff, services: ServicesDep
) -> StixResponse:
    inc = visible(session, principal, incident_id)
    return StixResponse(export.to_stix(session, inc, services.settings.observer_name))
