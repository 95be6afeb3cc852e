"""Console pages for incidents, Spanish first: the triage queue, the incident page
with its timeline and the analyst's actions, and the entity's own view with its
acknowledgement and reply. Forms post here and come back with 303 (or the page
again with the reason, on a refused action)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from api import incident_page
from api.access import viewer, visible
from api.console_deps import AnalystUser, ConsoleUser, EntityUser, page
from api.deps import Caller, ServicesDep, SessionDep
from api.errors import REFUSED, refusal, request_lang
from api.i18n import translator as _translator
from api.incident_page import Refused
from api.inputs import Id
from api.schemas import console as forms
from incidents import answers as entity_answers
from incidents import lifecycle, owners, queries, service, taxonomy, views
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
class OnIncident(Caller):
    """A request on one incident's page by a caller who may see the incident: the
    page itself, or a form posted from it."""

    request: Request
    incident_id: int

    @property
    def entity(self) -> str:
        return str(self.principal.entity_id)

    def page(
        self, refused: Refused | None = None, http_status: int = 200, done: str | None = None
    ) -> HTMLResponse:
        inc = visible(self.session, self.principal, self.incident_id)
        v = viewer(self.principal)
        return page(
            self.request,
            "incident.html",
            http_status=http_status,
            inc=views.detail(self.session, inc, v),
            principal=self.principal,
            label=taxonomy.label_es,
            resolutions=taxonomy.vocab()["resolutions"],
            closing_without_work=taxonomy.vocab()["closing_without_work"],
            rsit=taxonomy.rsit(),
            ncciss=taxonomy.vocab()["ncciss"],
            refused=refused,
            done=done,
            **incident_page.extras(self.session, self.services, inc, v),
        )

    def run(
        self, form: str, action: Callable[[], object], posted: BaseModel | None = None
    ) -> Response:
        """Run the form's action: done, back to the page with its message (303);
        refused, the page again with the reason beside the field at fault and what the
        person typed (`posted`, the form but its CSRF token) kept in the form (the
        transaction rolled back)."""
        visible(self.session, self.principal, self.incident_id)
        try:
            action()
            self.session.flush()  # a stale version shows here, with the page, not after it
        except REFUSED as exc:
            self.session.rollback()
            status, reason = refusal(self.request, exc)
            at, stale = incident_page.field_of(exc)
            if stale:
                reason = _translator(request_lang(self.request))("inc.stale_kept")
            draft = posted.model_dump(exclude={"csrf"}) if posted else {}
            kept = Refused(form, reason, at, draft, stale)
            return self.page(kept, status)
        back = f"/console/incidentes/{self.incident_id}?hecho={DONE_WORD[form]}"
        return RedirectResponse(back, status_code=303)


# Each form on the incident page → the word its success puts in the address
# (incident_page.DONE says which message that word shows).
DONE_WORD = {
    "transition": "estado",
    "close": "cerrado",
    "edit": "guardado",
    "assign": "asignado",
    "task": "tarea",
    "tasks": "tarea",
    "note": "nota",
    "notify": "notificado",
    "ack": "acuse",
    "reply": "respuesta",
}


def _reader(
    request: Request, incident_id: Id, session: SessionDep, services: ServicesDep, who: ConsoleUser
) -> OnIncident:
    return OnIncident(session, who, services, request, incident_id)


Reader = Annotated[OnIncident, Depends(_reader)]


# The forms: a reader of the incident who is also one of the CERT's analysts, or the
# entity the incident is about (the role is checked as for any console page).
def _analyst(f: Reader, _: AnalystUser) -> OnIncident:
    return f


def _entity(f: Reader, _: EntityUser) -> OnIncident:
    return f


AnalystForm = Annotated[OnIncident, Depends(_analyst)]
EntityForm = Annotated[OnIncident, Depends(_entity)]


@router.get("/{incident_id}", response_class=HTMLResponse)
def incident_page_(f: Reader, hecho: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    return f.page(done=incident_page.DONE.get(hecho))


@router.post("/{incident_id}/transicion")
def transition_form(f: AnalystForm, t: Annotated[forms.Transition, Form()]) -> Response:
    """A move in the lifecycle; closing (with its resolution) comes from the close form."""
    return f.run(
        "close" if t.to == "closed" else "transition",
        lambda: lifecycle.transition(
            f.session,
            f.incident_id,
            t.version,
            t.to,
            f.actor,
            t.resolution or None,
            t.comment,
            f.services.on_triaged,
        ),
        t,
    )


@router.post("/{incident_id}/editar")
def edit_form(f: AnalystForm, e: Annotated[forms.Edit, Form()]) -> Response:
    """Classification and wording: RSIT as "class/type", NCISS level, TLP, PAP."""
    policy, fields = f.services.policy, e.fields()
    return f.run(
        "edit",
        lambda: service.update(f.session, policy, f.incident_id, e.version, f.actor, fields),
        e,
    )


@router.post("/{incident_id}/asignar")
def assign_form(f: AnalystForm, a: Annotated[forms.Assign, Form()]) -> Response:
    """The incident's owner: one of the CERT's analysts, or nobody."""
    return f.run(
        "assign", lambda: owners.assign(f.session, f.incident_id, a.version, a.owner, f.actor), a
    )


@router.post("/{incident_id}/tarea")
def task_form(f: AnalystForm, t: Annotated[forms.Task, Form()]) -> Response:
    return f.run(
        "task", lambda: service.add_task(f.session, f.incident_id, f.actor, t.title, t.assignee), t
    )


@router.post("/{incident_id}/tareas/{task_id}")
def task_done_form(f: AnalystForm, task_id: Id, t: Annotated[forms.TaskDone, Form()]) -> Response:
    return f.run(
        "tasks",
        lambda: service.set_task(f.session, f.incident_id, task_id, t.version, t.done, f.actor),
    )


@router.post("/{incident_id}/nota")
def note_form(f: AnalystForm, n: Annotated[forms.Note, Form()]) -> Response:
    return f.run(
        "note", lambda: service.add_note(f.session, f.incident_id, f.actor, n.body, n.tlp), n
    )


@router.post("/{incident_id}/notificar")
def notify_form(f: AnalystForm) -> Response:
    """Sent only from the confirmation that lists who gets what."""
    return f.run("notify", lambda: f.services.notify(f.session, f.incident_id, f.actor))


@router.post("/{incident_id}/acuse")
def acknowledge_form(f: EntityForm) -> Response:
    return f.run(
        "ack", lambda: entity_answers.acknowledge(f.session, f.incident_id, f.entity, f.actor)
    )


@router.post("/{incident_id}/respuesta")
def reply_form(f: EntityForm, r: Annotated[forms.Reply, Form()]) -> Response:
    return f.run(
        "reply",
        lambda: entity_answers.reply(f.session, f.incident_id, f.entity, f.actor, r.body),
        r,
    )
