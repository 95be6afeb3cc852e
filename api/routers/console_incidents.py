"""Console pages for incidents, Spanish first: the triage queue, the incident page
with its timeline and the analyst's actions, and the entity's own view with its
acknowledgement and reply. Forms post here and come back with 303 (or the page
again with the reason, on a refused action)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.access import viewer, visible
from api.deps import ServicesDep, SessionDep
from api.errors import REFUSED, refusal
from api.inputs import Id, Name, Text
from api.routers.console import ConsoleAuthError, ConsoleUser, page
from incidents import answers as entity_answers
from incidents import lifecycle, queries, service, taxonomy, views
from incidents.errors import IncidentError
from vigia.core.tokens import Principal, Role

router = APIRouter(prefix="/console/incidentes", include_in_schema=False)

_STATUS = "^(open|new|triaged|in_progress|contained|resolved|closed)?$"


def _analyst(principal: ConsoleUser) -> Principal:
    if principal.role not in (Role.ADMIN, Role.ANALYST):
        raise ConsoleAuthError(403, "login.forbidden")
    return principal


def _entity(principal: ConsoleUser) -> Principal:
    if principal.role is not Role.ENTITY:
        raise ConsoleAuthError(403, "login.forbidden")
    return principal


AnalystUser = Annotated[Principal, Depends(_analyst)]
EntityUser = Annotated[Principal, Depends(_entity)]


@router.get("", response_class=HTMLResponse)
def queue(
    request: Request,
    session: SessionDep,
    principal: ConsoleUser,
    status: Annotated[str, Query(pattern=_STATUS)] = "open",
    priority: Annotated[str, Query(pattern="^(P1|P2|P3|P4)?$")] = "",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    """The triage queue: open incidents first by default, SLA breaches marked."""
    v = viewer(principal)
    f = queries.IncidentFilter(status or None, priority or None, v.entity_id)
    try:
        rows, nxt = queries.search(session, f, 50, cursor)
    except IncidentError:
        raise HTTPException(422, "cursor inválido") from None
    return page(
        request,
        "incidents.html",
        incidents=views.summaries(session, list(rows), v),
        next_cursor=nxt,
        principal=principal,
        status_filter=status,
        priority_filter=priority,
        label=taxonomy.label_es,
    )


def _detail(
    request: Request,
    session: SessionDep,
    principal: Principal,
    incident_id: int,
    error: str | None = None,
    http_status: int = 200,
) -> HTMLResponse:
    inc = visible(session, principal, incident_id)
    return page(
        request,
        "incident.html",
        http_status=http_status,
        inc=views.detail(session, inc, viewer(principal)),
        principal=principal,
        label=taxonomy.label_es,
        resolutions=taxonomy.vocab()["resolutions"],
        rsit=taxonomy.rsit(),
        ncciss=taxonomy.vocab()["ncciss"],
        error=error,
    )


@router.get("/{incident_id}", response_class=HTMLResponse)
def incident_page(
    request: Request, incident_id: Id, session: SessionDep, principal: ConsoleUser
) -> HTMLResponse:
    return _detail(request, session, principal, incident_id)


def _act(
    request: Request,
    session: SessionDep,
    principal: Principal,
    incident_id: int,
    action: Any,
) -> Response:
    """Run a form's action; on refusal show the page again with the reason."""
    visible(session, principal, incident_id)
    try:
        action()
        session.flush()  # a stale version shows here, with the page, not after it
    except REFUSED as exc:
        session.rollback()
        status, reason = refusal(request, exc)
        return _detail(request, session, principal, incident_id, reason, status)
    return RedirectResponse(f"/console/incidentes/{incident_id}", status_code=303)


@router.post("/{incident_id}/transicion")
def transition_form(
    request: Request,
    incident_id: Id,
    session: SessionDep,
    principal: AnalystUser,
    services: ServicesDep,
    version: Annotated[int, Form()],
    to: Annotated[str, Form(max_length=20)],
    resolution: Annotated[str, Form(max_length=40)] = "",
    comment: Annotated[Text, Form(max_length=5000)] = "",
) -> Response:
    return _act(
        request,
        session,
        principal,
        incident_id,
        lambda: lifecycle.transition(
            session,
            incident_id,
            version,
            to,
            principal.actor,
            resolution or None,
            comment,
            services.on_triaged,
        ),
    )


@router.post("/{incident_id}/editar")
def edit_form(
    request: Request,
    incident_id: Id,
    session: SessionDep,
    principal: AnalystUser,
    services: ServicesDep,
    version: Annotated[int, Form()],
    title: Annotated[Name, Form(max_length=300)],
    summary: Annotated[Text, Form(max_length=20000)] = "",
    rsit: Annotated[str, Form(max_length=130)] = "",
    ncciss: Annotated[int, Form(ge=0, le=5)] = 1,
    tlp: Annotated[str, Form(max_length=20)] = "amber",
    pap: Annotated[str, Form(max_length=10)] = "amber",
) -> Response:
    """Classification and wording: RSIT as "class/type", NCISS level, TLP, PAP."""
    rsit_class, _, rsit_type = rsit.partition("/")
    fields = {
        "title": title,
        "summary": summary,
        "rsit_class": rsit_class or None,
        "rsit_type": rsit_type or None,
        "ncciss": ncciss,
        "tlp": tlp,
        "pap": pap,
    }
    return _act(
        request,
        session,
        principal,
        incident_id,
        lambda: service.update(
            session, services.policy, incident_id, version, principal.actor, fields
        ),
    )


@router.post("/{incident_id}/tarea")
def task_form(
    request: Request,
    incident_id: Id,
    session: SessionDep,
    principal: AnalystUser,
    title: Annotated[Name, Form(max_length=300)],
    assignee: Annotated[Name, Form(max_length=200)] = "",
) -> Response:
    return _act(
        request,
        session,
        principal,
        incident_id,
        lambda: service.add_task(session, incident_id, principal.actor, title, assignee),
    )


@router.post("/{incident_id}/tareas/{task_id}")
def task_done_form(
    request: Request,
    incident_id: Id,
    task_id: Id,
    session: SessionDep,
    principal: AnalystUser,
    version: Annotated[int, Form()],
    done: Annotated[bool, Form()] = False,
) -> Response:
    return _act(
        request,
        session,
        principal,
        incident_id,
        lambda: service.set_task(session, incident_id, task_id, version, done, principal.actor),
    )


@router.post("/{incident_id}/nota")
def note_form(
    request: Request,
    incident_id: Id,
    session: SessionDep,
    principal: AnalystUser,
    body: Annotated[Text, Form(max_length=20000)],
    tlp: Annotated[str, Form(max_length=20)] = "amber",
) -> Response:
    return _act(
        request,
        session,
        principal,
        incident_id,
        lambda: service.add_note(session, incident_id, principal.actor, body, tlp),
    )


@router.post("/{incident_id}/notificar")
def notify_form(
    request: Request,
    incident_id: Id,
    session: SessionDep,
    principal: AnalystUser,
    services: ServicesDep,
) -> Response:
    return _act(
        request,
        session,
        principal,
        incident_id,
        lambda: services.notify(session, incident_id, principal.actor),
    )


@router.post("/{incident_id}/acuse")
def acknowledge_form(
    request: Request, incident_id: Id, session: SessionDep, principal: EntityUser
) -> Response:
    entity = str(principal.entity_id)
    return _act(
        request,
        session,
        principal,
        incident_id,
        lambda: entity_answers.acknowledge(session, incident_id, entity, principal.actor),
    )


@router.post("/{incident_id}/respuesta")
def reply_form(
    request: Request,
    incident_id: Id,
    session: SessionDep,
    principal: EntityUser,
    body: Annotated[Text, Form(max_length=20000)],
) -> Response:
    entity = str(principal.entity_id)
    return _act(
        request,
        session,
        principal,
        incident_id,
        lambda: entity_answers.reply(session, incident_id, entity, principal.actor, body),
    )
