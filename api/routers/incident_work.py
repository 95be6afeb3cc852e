"""Work on an incident: notes and tasks (CERT), notification of the entities, and
the entity's acknowledgement and replies."""

from __future__ import annotations

from fastapi import APIRouter

from api.access import visible
from api.deps import Analyst, Entity, ServicesDep, SessionDep
from api.errors import Flushed
from api.inputs import Id
from api.presenters import incident_detail
from api.schemas.incidents import (
    Acknowledged,
    IncidentDetail,
    NoteIn,
    NotifyIn,
    ObservableIn,
    Queued,
    ReplyIn,
    TaskIn,
    TaskOut,
    TaskUpdate,
)
from incidents import answers as entity_answers
from incidents import service

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"], dependencies=[Flushed])


@router.post("/{incident_id}/notes", status_code=201, response_model=IncidentDetail)
def add_note(
    incident_id: Id, body: NoteIn, session: SessionDep, principal: Analyst
) -> IncidentDetail:
    service.add_note(session, incident_id, principal.actor, body.body, body.tlp)
    return incident_detail(session, service.get(session, incident_id), principal)


@router.post("/{incident_id}/observables", status_code=201, response_model=IncidentDetail)
def add_observable(
    incident_id: Id, body: ObservableIn, session: SessionDep, principal: Analyst
) -> IncidentDetail:
    service.add_observable_by_hand(
        session, incident_id, principal.actor, body.type, body.value, body.tlp
    )
    return incident_detail(session, service.get(session, incident_id), principal)


@router.post("/{incident_id}/tasks", status_code=201, response_model=TaskOut)
def add_task(incident_id: Id, body: TaskIn, session: SessionDep, principal: Analyst) -> TaskOut:
    task = service.add_task(session, incident_id, principal.actor, body.title, body.assignee)
    return TaskOut(id=task.id, version=task.version, status=task.status, title=task.title)


@router.patch("/{incident_id}/tasks/{task_id}", response_model=TaskOut)
def set_task(
    incident_id: Id, task_id: Id, body: TaskUpdate, session: SessionDep, principal: Analyst
) -> TaskOut:
    task = service.set_task(session, incident_id, task_id, body.version, body.done, principal.actor)
    return TaskOut(id=task.id, version=task.version, status=task.status, title=task.title)


@router.post("/{incident_id}/notifications", status_code=202, response_model=Queued)
def notify(
    incident_id: Id,
    body: NotifyIn,
    session: SessionDep,
    principal: Analyst,
    services: ServicesDep,
) -> Queued:
    """Queue notices to the affected entities (or those named); sent by the scheduler."""
    queued = services.notify(session, incident_id, principal.actor, body.entity_ids)
    return Queued(queued=queued)


@router.post("/{incident_id}/acknowledgement", response_model=Acknowledged)
def acknowledge(incident_id: Id, session: SessionDep, principal: Entity) -> Acknowledged:
    """The entity has read the notice: its reply clock stops."""
    visible(session, principal, incident_id)
    assert principal.entity_id is not None
    first = entity_answers.acknowledge(session, incident_id, principal.entity_id, principal.actor)
    return Acknowledged(acknowledged=True, first=first)


@router.post("/{incident_id}/replies", status_code=201, response_model=IncidentDetail)
def reply(incident_id: Id, body: ReplyIn, session: SessionDep, principal: Entity) -> IncidentDetail:
    visible(session, principal, incident_id)
    assert principal.entity_id is not None
    entity_answers.reply(session, incident_id, principal.entity_id, principal.actor, body.body)
    return incident_detail(session, service.get(session, incident_id), principal)
