"""Console pages for incidents, Spanish first: the triage queue, the incident page
with its timeline and the analyst's actions, and the entity's own view with its
acknowledgement and reply. Forms post here and come back with 303 (or the page
again with the reason, on a refused action)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from api.access import viewer, visible
from api.console_deps import AnalystUser, ConsoleUser, EntityUser, page, run_form
from api.deps import ServicesDep, SessionDep
from api.inputs import Id
from api.schemas import console as forms
from core.tokens import Principal
from incidents import answers as entity_answers
from incidents import lifecycle, queries, service, taxonomy, views
from incidents.errors import IncidentError

router = APIRouter(prefix="/console/incidentes", include_in_schema=False)

_STATUS = "^(open|new|triaged|in_progress|contained|resolved|closed)?$"


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


@dataclass(frozen=True)
class OnIncident:
    """A request on one incident's page by a caller who may see the incident: the
    page itself, or a form posted from it."""

    request: Request
    session: Session
    principal: Principal
    incident_id: int

    @property
    def actor(self) -> str:
        return self.principal.actor

    @property
    def entity(self) -> str:
        return str(self.principal.entity_id)

    def page(self, error: str | None = None, http_status: int = 200) -> HTMLResponse:
        inc = visible(self.session, self.principal, self.incident_id)
        return page(
            self.request,
            "incident.html",
            http_status=http_status,
            inc=views.detail(self.session, inc, viewer(self.principal)),
            principal=self.principal,
            label=taxonomy.label_es,
            resolutions=taxonomy.vocab()["resolutions"],
            rsit=taxonomy.rsit(),
            ncciss=taxonomy.vocab()["ncciss"],
            error=error,
        )

    def run(self, action: Callable[[], object]) -> Response:
        """Run the form's action; on refusal show the page again with the reason."""
        visible(self.session, self.principal, self.incident_id)
        back = f"/console/incidentes/{self.incident_id}"
        return run_form(self.request, self.session, action, back, self.page)


def _reader(request: Request, incident_id: Id, session: SessionDep, who: ConsoleUser) -> OnIncident:
    return OnIncident(request, session, who, incident_id)


def _analyst(
    request: Request, incident_id: Id, session: SessionDep, who: AnalystUser
) -> OnIncident:
    return OnIncident(request, session, who, incident_id)


def _entity(request: Request, incident_id: Id, session: SessionDep, who: EntityUser) -> OnIncident:
    return OnIncident(request, session, who, incident_id)


Reader = Annotated[OnIncident, Depends(_reader)]
AnalystForm = Annotated[OnIncident, Depends(_analyst)]
EntityForm = Annotated[OnIncident, Depends(_entity)]


@router.get("/{incident_id}", response_class=HTMLResponse)
def incident_page(f: Reader) -> HTMLResponse:
    return f.page()


@router.post("/{incident_id}/transicion")
def transition_form(
    f: AnalystForm, services: ServicesDep, t: Annotated[forms.Transition, Form()]
) -> Response:
    return f.run(
        lambda: lifecycle.transition(
            f.session,
            f.incident_id,
            t.version,
            t.to,
            f.actor,
            t.resolution or None,
            t.comment,
            services.on_triaged,
        )
    )


@router.post("/{incident_id}/editar")
def edit_form(f: AnalystForm, services: ServicesDep, e: Annotated[forms.Edit, Form()]) -> Response:
    """Classification and wording: RSIT as "class/type", NCISS level, TLP, PAP."""
    fields = e.fields()
    return f.run(
        lambda: service.update(
            f.session, services.policy, f.incident_id, e.version, f.actor, fields
        )
    )


@router.post("/{incident_id}/tarea")
def task_form(f: AnalystForm, t: Annotated[forms.Task, Form()]) -> Response:
    return f.run(lambda: service.add_task(f.session, f.incident_id, f.actor, t.title, t.assignee))


@router.post("/{incident_id}/tareas/{task_id}")
def task_done_form(f: AnalystForm, task_id: Id, t: Annotated[forms.TaskDone, Form()]) -> Response:
    return f.run(
        lambda: service.set_task(f.session, f.incident_id, task_id, t.version, t.done, f.actor)
    )


@router.post("/{incident_id}/nota")
def note_form(f: AnalystForm, n: Annotated[forms.Note, Form()]) -> Response:
    return f.run(lambda: service.add_note(f.session, f.incident_id, f.actor, n.body, n.tlp))


@router.post("/{incident_id}/notificar")
def notify_form(f: AnalystForm, services: ServicesDep) -> Response:
    return f.run(lambda: services.notify(f.session, f.incident_id, f.actor))


@router.post("/{incident_id}/acuse")
def acknowledge_form(f: EntityForm) -> Response:
    return f.run(lambda: entity_answers.acknowledge(f.session, f.incident_id, f.entity, f.actor))


@router.post("/{incident_id}/respuesta")
def reply_form(f: EntityForm, r: Annotated[forms.Reply, Form()]) -> Response:
    return f.run(lambda: entity_answers.reply(f.session, f.incident_id, f.entity, f.actor, r.body))
