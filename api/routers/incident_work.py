"""Work on an incident: notes and tasks (CERT), notification of the entities, and
the entity's acknowledgement and replies."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from api.access import viewer, visible
from api.deps import Analyst, Entity, ServicesDep, SessionDep
from api.errors import Flushed
from api.inputs import Id, Input, Name, Text
from incidents import answers as entity_answers
from incidents import service, views

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"], dependencies=[Flushed])


class NoteIn(Input):
    body: Text = Field(min_length=1, max_length=20000)
    tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = "amber"


class ObservableIn(Input):
    type: str = Field(max_length=64, description="a MISP attribute type: ip-dst, domain, sha256…")
    value: Name = Field(min_length=1, max_length=2000)
    tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = "amber"


class TaskIn(Input):
    title: Name = Field(min_length=1, max_length=300)
    assignee: Name = Field(default="", max_length=200)


class TaskUpdate(Input):
    version: int
    done: bool


class NotifyIn(Input):
    entity_ids: list[str] | None = Field(default=None, max_length=100)


class ReplyIn(Input):
    body: Text = Field(min_length=1, max_length=20000)


@router.post("/{incident_id}/notes", status_code=201)
def add_note(
    incident_id: Id, body: NoteIn, session: SessionDep, principal: Analyst
) -> dict[str, Any]:
    service.add_note(session, incident_id, principal.actor, body.body, body.tlp)
    return views.detail(session, service.get(session, incident_id), viewer(principal))


@router.post("/{incident_id}/observables", status_code=201)
def add_observable(
    incident_id: Id, body: ObservableIn, session: SessionDep, principal: Analyst
) -> dict[str, Any]:
    service.add_observable_by_hand(
        session, incident_id, principal.actor, body.type, body.value, body.tlp
    )
    return views.detail(session, service.get(session, incident_id), viewer(principal))


@router.post("/{incident_id}/tasks", status_code=201)
def add_task(
    incident_id: Id, body: TaskIn, session: SessionDep, principal: Analyst
) -> dict[str, Any]:
    task = service.add_task(session, incident_id, principal.actor, body.title, body.assignee)
    return {"id": task.id, "version": task.version, "status": task.status, "title": task.title}


@router.patch("/{incident_id}/tasks/{task_id}")
def set_task(
    incident_id: Id, task_id: Id, body: TaskUpdate, session: SessionDep, principal: Analyst
) -> dict[str, Any]:
    task = service.set_task(session, incident_id, task_id, body.version, body.done, principal.actor)
    return {"id": task.id, "version": task.version, "status": task.status, "title": task.title}


@router.post("/{incident_id}/notifications", status_code=202)
def notify(
    incident_id: Id,
    body: NotifyIn,
    session: SessionDep,
    principal: Analyst,
    services: ServicesDep,
) -> dict[str, Any]:
    """Queue notices to the affected entities (or those named); sent by the scheduler."""
    queued = services.notify(session, incident_id, principal.actor, body.entity_ids)
    return {"queued": queued}


@router.post("/{incident_id}/acknowledgement")
def acknowledge(incident_id: Id, session: SessionDep, principal: Entity) -> dict[str, Any]:
    """The entity has read the notice: its reply clock stops."""
    visible(session, principal, incident_id)
    assert principal.entity_id is not None
    first = entity_answers.acknowledge(session, incident_id, principal.entity_id, principal.actor)
    return {"acknowledged": True, "first": first}


@router.post("/{incident_id}/replies", status_code=201)
def reply(incident_id: Id, body: ReplyIn, session: SessionDep, principal: Entity) -> dict[str, Any]:
    visible(session, principal, incident_id)
    assert principal.entity_id is not None
    entity_answers.reply(session, incident_id, principal.entity_id, principal.actor, body.body)
    return views.detail(session, service.get(session, incident_id), viewer(principal))
