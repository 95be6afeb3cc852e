"""`/api/v1/incidents`: the queue (filters, cursor pagination), detail, opening from
alerts, edits with optimistic locking, lifecycle transitions, merge, split."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from api.access import viewer, visible
from api.deps import Analyst, Caller, Reader, ServicesDep, SessionDep
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
from incidents.models import IncidentRow

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


class Change(Caller):
    """An analyst's change to incidents, answered as the API shows the incident."""

    def detail(self, inc: IncidentRow) -> IncidentDetail:
        return incident_detail(self.session, inc, self.principal)


def _change(session: SessionDep, principal: Analyst, services: ServicesDep) -> Change:
    return Change(session, principal, services)


AnalystChange = Annotated[Change, Depends(_change)]


@router.post("", status_code=201, response_model=IncidentDetail)
def open_incident(body: IncidentCreate, c: AnalystChange) -> IncidentDetail:
    """Promote alerts to a new incident (or open one with none, from a report)."""
    fields = body.model_dump(exclude={"alert_ids", "title"}, exclude_none=True)
    policy = c.services.policy
    return c.detail(
        service.open_incident(c.session, policy, c.actor, body.alert_ids, body.title, **fields)
    )


@router.get("/{incident_id}", response_model=IncidentDetail)
def get_incident(incident_id: Id, session: SessionDep, principal: Reader) -> IncidentDetail:
    return incident_detail(session, visible(session, principal, incident_id), principal)


@router.patch("/{incident_id}", response_model=IncidentDetail)
def update_incident(incident_id: Id, body: IncidentUpdate, c: AnalystChange) -> IncidentDetail:
    fields = body.model_dump(exclude={"version"}, exclude_unset=True)
    policy = c.services.policy
    return c.detail(service.update(c.session, policy, incident_id, body.version, c.actor, fields))


@router.post("/{incident_id}/transitions", response_model=IncidentDetail)
def transition(incident_id: Id, body: TransitionIn, c: AnalystChange) -> IncidentDetail:
    """Move along the lifecycle; 409 names the moves allowed from the current state."""
    b, on_triaged = body, c.services.on_triaged
    return c.detail(
        lifecycle.transition(
            c.session, incident_id, b.version, b.to, c.actor, b.resolution, b.comment, on_triaged
        )
    )


@router.post("/{incident_id}/merge", response_model=IncidentDetail)
def merge(incident_id: Id, body: MergeIn, c: AnalystChange) -> IncidentDetail:
    """Fold the listed incidents into this one (they close as duplicates)."""
    return c.detail(reshape.merge(c.session, incident_id, body.version, body.incident_ids, c.actor))


@router.post("/{incident_id}/split", status_code=201, response_model=IncidentDetail)
def split(incident_id: Id, body: SplitIn, c: AnalystChange) -> IncidentDetail:
    """Take alerts out into a new incident; answers the new one."""
    b, policy = body, c.services.policy
    return c.detail(
        reshape.split(c.session, policy, incident_id, b.version, b.alert_ids, c.actor, b.title)
    )


@router.post("/{incident_id}/alerts", response_model=IncidentDetail)
def link_alerts(incident_id: Id, body: LinkIn, c: AnalystChange) -> IncidentDetail:
    return c.detail(
        reshape.link_by_hand(c.session, incident_id, body.version, body.alert_ids, c.actor)
    )
