"""`/api/v1/incidents`: the queue (filters, cursor pagination), detail, opening from
alerts, edits with optimistic locking, lifecycle transitions, merge, split."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.access import viewer, visible
from api.deps import Analyst, Reader, ServicesDep, SessionDep
from api.errors import Flushed
from api.inputs import MAX_ID, Id, Input, Name, Text
from incidents import lifecycle, queries, reshape, service, views
from incidents.errors import IncidentError

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"], dependencies=[Flushed])

State = Literal["new", "triaged", "in_progress", "contained", "resolved", "closed"]
Tlp = Literal["clear", "green", "amber", "amber+strict", "red"]
Pap = Literal["clear", "green", "amber", "red"]
Resolution = Literal[
    "true_positive_with_impact", "true_positive_without_impact", "false_positive", "duplicate"
]
AlertIds = Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=500)]


class IncidentPage(BaseModel):
    incidents: list[dict[str, Any]]
    next_cursor: str | None


class IncidentCreate(Input):
    alert_ids: AlertIds = Field(default_factory=list)
    title: Name = Field(default="", max_length=300)
    summary: Text = Field(default="", max_length=20000)
    rsit_class: str | None = Field(default=None, max_length=60)
    rsit_type: str | None = Field(default=None, max_length=60)
    tlp: Tlp | None = None
    pap: Pap | None = None
    ncciss: int | None = Field(default=None, ge=0, le=5)


class IncidentUpdate(Input):
    version: int
    title: Name | None = Field(default=None, max_length=300)
    summary: Text | None = Field(default=None, max_length=20000)
    rsit_class: str | None = Field(default=None, max_length=60)
    rsit_type: str | None = Field(default=None, max_length=60)
    tlp: Tlp | None = None
    pap: Pap | None = None
    ncciss: int | None = Field(default=None, ge=0, le=5)


class TransitionIn(Input):
    version: int
    to: State
    resolution: Resolution | None = None
    comment: Text = Field(default="", max_length=5000)


class MergeIn(Input):
    version: int
    incident_ids: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(min_length=1, max_length=50)
    ]


class SplitIn(Input):
    version: int
    alert_ids: AlertIds
    title: Name = Field(default="", max_length=300)


class LinkIn(Input):
    version: int
    alert_ids: AlertIds


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
    return IncidentPage(incidents=views.summaries(session, list(rows), v), next_cursor=nxt)


@router.post("", status_code=201)
def open_incident(
    body: IncidentCreate, session: SessionDep, principal: Analyst, services: ServicesDep
) -> dict[str, Any]:
    """Promote alerts to a new incident (or open one with none, from a report)."""
    fields = body.model_dump(exclude={"alert_ids", "title"}, exclude_none=True)
    inc = service.open_incident(
        session, services.policy, principal.actor, body.alert_ids, body.title, **fields
    )
    return views.detail(session, inc, viewer(principal))


@router.get("/{incident_id}")
def get_incident(incident_id: Id, session: SessionDep, principal: Reader) -> dict[str, Any]:
    return views.detail(session, visible(session, principal, incident_id), viewer(principal))


@router.patch("/{incident_id}")
def update_incident(
    incident_id: Id,
    body: IncidentUpdate,
    session: SessionDep,
    principal: Analyst,
    services: ServicesDep,
) -> dict[str, Any]:
    fields = body.model_dump(exclude={"version"}, exclude_unset=True)
    inc = service.update(
        session, services.policy, incident_id, body.version, principal.actor, fields
    )
    return views.detail(session, inc, viewer(principal))


@router.post("/{incident_id}/transitions")
def transition(
    incident_id: Id,
    body: TransitionIn,
    session: SessionDep,
    principal: Analyst,
    services: ServicesDep,
) -> dict[str, Any]:
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
    return views.detail(session, inc, viewer(principal))


@router.post("/{incident_id}/merge")
def merge(
    incident_id: Id, body: MergeIn, session: SessionDep, principal: Analyst
) -> dict[str, Any]:
    """Fold the listed incidents into this one (they close as duplicates)."""
    inc = reshape.merge(session, incident_id, body.version, body.incident_ids, principal.actor)
    return views.detail(session, inc, viewer(principal))


@router.post("/{incident_id}/split", status_code=201)
def split(
    incident_id: Id,
    body: SplitIn,
    session: SessionDep,
    principal: Analyst,
    services: ServicesDep,
) -> dict[str, Any]:
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
    return views.detail(session, new, viewer(principal))


@router.post("/{incident_id}/alerts")
def link_alerts(
    incident_id: Id, body: LinkIn, session: SessionDep, principal: Analyst
) -> dict[str, Any]:
    inc = reshape.link_by_hand(session, incident_id, body.version, body.alert_ids, principal.actor)
    return views.detail(session, inc, viewer(principal))
