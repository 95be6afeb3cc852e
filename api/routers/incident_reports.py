"""Incident metrics (JSON or CSV) and exports (MISP event, STIX 2.1 bundle), for CERT staff.

Mounted before the incident router so that `/metrics` is not read as an id."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from api.access import own_entity, visible
from api.deps import Reader, ServicesDep, SessionDep, Staff
from api.errors import request_lang
from api.i18n import translator
from api.incident_pdf import incident_pdf
from api.inputs import Id
from api.schemas.common import CSV, binary
from api.schemas.incidents import Metrics, MispEvent, StixBundle
from core.clock import utcnow
from incidents import export, metrics, sla, views
from incidents.service import entities_of

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@router.get("/metrics", response_model=Metrics, responses=CSV)
def incident_metrics(
    session: SessionDep,
    principal: Staff,
    since: Annotated[datetime | None, Query(description="opened at or after")] = None,
    until: Annotated[datetime | None, Query(description="opened before")] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    lang: Annotated[
        Literal["es", "en"] | None,
        Query(
            description="the CSV's header, states, RSIT classes and clocks in words (else codes)"
        ),
    ] = None,
) -> Response | Metrics:
    """Times to detect/acknowledge/contain/resolve and SLA breaches (default: 90 days)."""
    now = utcnow()
    rows = metrics.times(session, since or now - timedelta(days=90), until or now, now)
    if format == "csv":
        return Response(
            metrics.to_csv(rows, translator(lang) if lang else None),
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


@router.get(
    "/{incident_id}/export/pdf", response_class=Response, responses=binary("application/pdf")
)
def export_pdf(
    incident_id: Id,
    request: Request,
    session: SessionDep,
    principal: Reader,
    services: ServicesDep,
    entity: Annotated[str | None, Query(max_length=64, description="whose report")] = None,
) -> Response:
    """The incident's report for one affected entity (PDF): what that entity may read
    of it (TLP), with its SLA clocks and timeline. An entity gets its own; CERT staff
    name the entity (default: the first affected one). `?lang=en` for English."""
    inc = visible(session, principal, incident_id)
    named = entities_of(session, incident_id)
    who = own_entity(principal) or entity or (named[0] if named else None)
    if who is not None and who not in named:
        raise HTTPException(404, "the incident does not name this entity")
    v = views.Viewer(who) if who else views.Viewer()
    detail = views.detail(session, inc, v)
    ents = [
        e for e in views.entities(session, [inc.id])[inc.id] if who is None or e.entity_id == who
    ]
    clocks = [
        c for c in sla.clocks(inc, ents, utcnow()) if who is None or c["clock"] == "entity_reply"
    ]
    lang = request_lang(request) if request.query_params.get("lang") else "es"
    pdf = incident_pdf(detail, clocks, services.settings.observer_name, lang, who)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="incidente-{inc.id}.pdf"'},
    )
