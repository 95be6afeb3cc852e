"""Work on an incident: notes and tasks (CERT), notification of the entities, and
the entity's acknowledgement and replies."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Analyst, Entity, ServicesDep, SessionDep
from api.incident_errors import answers, viewer, visible
from incidents import answers as entity_answers
from incidents import service, views

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


class NoteIn(BaseModel):
    body: str = Field(min_length=1, max_length=20000)
    tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = "amber"


class ObservableIn(BaseModel):
    type: str = Field(max_length=64, description="a MISP attribute type: ip-dst, domain, sha256…")
    value: str = Field(min_length=1, max_length=2000)
    tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = "amber"


class TaskIn(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    assignee: str = Field(default="", max_length=200)


class TaskUpdate(BaseModel):
    version: int
    done: bool


class NotifyIn(BaseModel):
    entity_ids: list[str] | None = Field(default=None, max_length=100)


class ReplyIn(BaseModel):
    body: str = Field(min_length=1, max_length=20000)


@router.post("/{incident_id}/notes", status_code=201)
def add_note(
    incident_id: int, body: NoteIn, session: SessionDep, principal: Analyst
) -> dict[str, Any]:
    with answers(session):
        service.add_note(session, incident_id, principal.actor, body.body, body.tlp)
    return views.detail(session, service.get(session, incident_id), viewer(principal))


@router.post("/{incident_id}/observables", status_code=201)
def add_observable(
    incident_id: int, body: ObservableIn, session: SessionDep, principal: Analyst
) -> dict[str, Any]:
    with answers(session):
        service.add_observable_by_hand(
            session, incident_id, principal.actor, body.type, body.value, body.tlp
        )
    return views.detail(session, service.get(session, incident_id), viewer(principal))


@router.post("/{incident_id}/tasks", status_code=201)
def add_task(
    incident_id: int, body: TaskIn, session: SessionDep, principal: Analyst
) -> dict[str, Any]:
    with answers(session):
        task = service.add_task(session, incident_id, principal.actor, body.title, body.assignee)
    return {"id": task.id, "version": task.version, "status": task.status, "title": task.title}


@router.patch("/{incident_id}/tasks/{task_id}")
def set_task(
    incident_id: int, task_id: int, body: TaskUpdate, session: SessionDep, principal: Analyst
) -> dict[str, Any]:
    with answers(session):
        task = service.set_task(
            session, incident_id, task_id, body.version, body.done, principal.actor
        )
    return {"id": task.id, "version": task.version, "status": task.status, "title": task.title}


@router.post("/{incident_id}/notifications", status_code=202)
def notify(
    incident_id: int,
    body: NotifyIn,
    session: SessionDep,
    principal: Analyst,
    services: ServicesDep,
) -> dict[str, Any]:
    """Queue notices to the affected entities (or those named); sent by the scheduler."""
    with answers(session):
        queued = services.notify(session, incident_id, principal.actor, body.entity_ids)
    return {"queued": queued}


@router.post("/{incident_id}/acknowledgement")
def acknowledge(incident_id: int, session: SessionDep, principal: Entity) -> dict[str, Any]:
    """The entity has read the notice: its reply clock stops."""
    visible(session, principal, incident_id)
    assert principal.entity_id is not None
    with answers(session):
        first = entity_answers.acknowledge(
            session, incident_id, principal.entity_id, principal.actor
        )
    return {"acknowledged": True, "first": first}


@router.post("/{incident_id}/replies", status_code=201)
def reply(
    incident_id: int, body: ReplyIn, session: SessionDep, principal: Entity
) -> dict[str, Any]:
    visible(session, principal, incident_id)
    assert principal.entity_id is not None
    with answers(session):
        entity_answers.reply(session, incident_id, principal.entity_id, principal.actor, body.body)
    return views.detail(session, service.get(session, incident_id), viewer(principal))
