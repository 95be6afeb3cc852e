"""`/api/v1/incidents`: the queue (filters, cursor pagination), detail, opening from
alerts, edits with optimistic locking, lifecycle transitions, merge, split."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from api.access import viewer, visible
from api.deps import Analyst, Reader, ServicesDep, SessionDep
from api.errors import Flushed
from api.inputs import Id
from api.presenters import incident_detail
from api.schemas.incidents import (
    IncidentCreate,
    IncidentDetail,
    IncidentPage,
    IncidentUpdate,
    LinkIn,
    MergeIn,
    SplitIn,
    State,
    TransitionIn,
)
from incidents import lifecycle, queries, reshape, service, views
from incidents.errors import IncidentError

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"], dependencies=[Flushed])


@router.get("", response_model=IncidentPage)
def list_incidents(
    session: SessionDep,
    principal: Reader,
    status: Annotated[State | Literal["open"] | None, Query()] = None,
    priority: Annotated[Literal["P1", "P2", "P3", "P4"] | None, Query()] = None,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    rsit_class: Annotated[str | None, Query(max_length=60)] = None,
    breached: Annotated[bool | None, Query(description="with a recorded SLA breach")] = None,
    since: Annotated[datetime | None, Query(description="opened at or after")] = None,
    until: Annotated[datetime | None, Query(description="opened before")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> IncidentPage:
    v = viewer(principal)
    if not v.staff:
        if entity not in (None, v.entity_id):
            raise HTTPException(403, "an entity token sees only its own entity")
        entity = v.entity_id
    f = queries.IncidentFilter(status, priority, entity, rsit_class, breached, since, until)
    try:
        rows, nxt = queries.search(session, f, limit, cursor)
    except IncidentError as exc:
        raise HTTPException(422, str(exc)) from None
    found = views.summaries(session, list(rows), v)
    return IncidentPage.model_validate({"incidents": found, "next_cursor": nxt})


@router.post("", status_code=201, response_model=IncidentDetail)
def open_incident(
    body: IncidentCreate, session: SessionDep, principal: Analyst, services: ServicesDep
) -> IncidentDetail:
    """Promote alerts to a new incident (or open one with none, from a report)."""
    fields = body.model_dump(exclude={"alert_ids", "title"}, exclude_none=True)
    inc = service.open_incident(
        session, services.policy, principal.actor, body.alert_ids, body.title, **fields
    )
    return incident_detail(session, inc, principal)


@router.get("/{incident_id}", response_model=IncidentDetail)
def get_incident(incident_id: Id, session: SessionDep, principal: Reader) -> IncidentDetail:
    return incident_detail(session, visible(session, principal, incident_id), principal)


@router.patch("/{incident_id}", response_model=IncidentDetail)
def update_incident(
    incident_id: Id,
    body: IncidentUpdate,
    session: SessionDep,
    principal: Analyst,
    services: ServicesDep,
) -> IncidentDetail:
    fields = body.model_dump(exclude={"version"}, exclude_unset=True)
    inc = service.update(
        session, services.policy, incident_id, body.version, principal.actor, fields
    )
    return incident_detail(session, inc, principal)


@router.post("/{incident_id}/transitions", response_model=IncidentDetail)
def transition(
    incident_id: Id,
    body: TransitionIn,
    session: SessionDep,
    principal: Analyst,
    services: ServicesDep,
) -> IncidentDetail:
    """Move along the lifecycle; 409 names the moves allowed from the current state."""
    inc = lifecycle.transition(
        session,
        incident_id,
        body.version,
        body.to,
        principal.actor,
        body.resolution,
        body.comment,
        services.on_triaged,
    )
    return incident_detail(session, inc, principal)


@router.post("/{incident_id}/merge", response_model=IncidentDetail)
def merge(
    incident_id: Id, body: MergeIn, session: SessionDep, principal: Analyst
) -> IncidentDetail:
    """Fold the listed incidents into this one (they close as duplicates)."""
    inc = reshape.merge(session, incident_id, body.version, body.incident_ids, principal.actor)
    return incident_detail(session, inc, principal)


@router.post("/{incident_id}/split", status_code=201, response_model=IncidentDetail)
def split(
    incident_id: Id,
    body: SplitIn,
    session: SessionDep,
    principal: Analyst,
    services: ServicesDep,
) -> IncidentDetail:
    """Take alerts out into a new incident; answers the new one."""
    new = reshape.split(
        session,
        services.policy,
        incident_id,
        body.version,
        body.alert_ids,
        principal.actor,
        body.title,
    )
    return incident_detail(session, new, principal)


@router.post("/{incident_id}/alerts", response_model=IncidentDetail)
def link_alerts(
    incident_id: Id, body: LinkIn, session: SessionDep, principal: Analyst
) -> IncidentDetail:
    inc = reshape.link_by_hand(session, incident_id, body.version, body.alert_ids, principal.actor)
    return incident_detail(session, inc, principal)
