"""The console's alert queue (issue 15): `/console/alertas` with its filters in the
address (api.queue_params), counts per status, keyset pages, a poll that only says
how many alerts arrived since the page was drawn (`/console/alertas-nuevas`), and
the analysts' actions on the alerts chosen (`POST /console/alertas/lote`).

Who sees what is the API's rule (api.deps.visibility): an entity only its own alerts,
never TLP:RED; the CERT everything. Acting is for analysts and admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from api import queue_params
from api.console_deps import AnalystPage, ConsolePage, ReaderPage, run_form
from api.deps import ServicesDep, visibility
from api.queue_params import Params
from certification.registry import Registry
from core.clock import iso, utcnow
from core.tokens import Role
from correlator.fleet import list_sensors
from incidents import alert_bulk, alert_queue, triage

router = APIRouter(prefix="/console", include_in_schema=False)

# The message after an action, by the word the address carries (a fixed list).
DONE = {
    "acknowledge": "queue.done.acknowledge",
    "dismiss": "queue.done.dismiss",
    "assign": "queue.done.assign",
    "unassign": "queue.done.unassign",
    "promote": "queue.done.promote",
    "attach": "queue.done.attach",
}
POLL_MS = 30_000


class NewAlerts(BaseModel):
    """How many alerts under the queue's filters arrived since the page was drawn."""

    nuevas: int
    hasta: str


def _params(c: ConsolePage) -> Params:
    entity_id, hidden = visibility(c.principal, None)
    fixed = c.principal.role is Role.ENTITY
    return queue_params.read(c.request.query_params, entity_id, hidden, fixed)


def _done(request: Request, assignable: list[str]) -> dict[str, Any] | None:
    """The message the address asks for after an action, from fixed words only."""
    q = request.query_params
    key = DONE.get(q.get("hecho", ""))
    if key is None:
        return None
    n = q.get("n", "0")
    reason = q.get("motivo", "")
    who = q.get("analista", "")
    inc = q.get("inc", "")
    return {
        "key": key,
        "n": int(n) if n.isdigit() else 0,
        "reason": reason if reason in triage.DISMISS_REASONS else "",
        "who": who if who in assignable else "",
        "incident": int(inc) if inc.isdigit() else None,
    }


def _queue(
    c: ConsolePage,
    p: Params,
    cursor: str = "",
    error: str | None = None,
    chosen: tuple[str, ...] = (),
    http_status: int = 200,
) -> HTMLResponse:
    drawn, session, principal = utcnow(), c.session, c.principal
    bad_cursor = False
    try:
        rows, nxt = alert_queue.page(session, p.filter, p.sort, cursor or None)
    except alert_queue.BadCursor:
        bad_cursor = True
        rows, nxt = alert_queue.page(session, p.filter, p.sort, None)
    staff = principal.role is not Role.ENTITY
    analyst = principal.role in (Role.ADMIN, Role.ANALYST)
    assignable = alert_queue.assignable(session) if analyst else []
    sort_name, descending = alert_queue.parse_sort(p.sort)
    return c.page(
        "alerts.html",
        http_status=422 if p.errors and http_status == 200 else http_status,
        rows=[(r, r.to_ecs()) for r in rows],
        next_cursor=nxt,
        first_page=bool(cursor) and not bad_cursor,
        bad_cursor=bad_cursor,
        counts=alert_queue.counts(session, p.filter),
        statuses=alert_queue.STATUSES,
        kinds=[*alert_queue.kinds(), alert_queue.OTHER_KIND],
        kind_of=alert_queue.kind_of,
        severities=list(alert_queue.SEVERITIES),
        severity_word=alert_queue.severity_word,
        sorts=alert_queue.SORTS,
        sort_name=sort_name,
        descending=descending,
        p=p,
        staff=staff,
        can_act=analyst,
        entities=Registry.all(session) if staff else [],
        sensors=[s.name for s in list_sensors(session)] if staff else [],
        assignable=assignable,
        nobody=queue_params.NOBODY,
        reasons=triage.DISMISS_REASONS,
        done=_done(c.request, assignable),
        error=error,
        chosen=set(chosen),
        drawn=iso(drawn),
        poll_ms=POLL_MS,
    )


@router.get("/alertas", response_class=HTMLResponse)
def queue_page(c: ReaderPage, cursor: Annotated[str, Query(max_length=1000)] = "") -> HTMLResponse:
    """The queue: newest received first unless `?orden=` says otherwise."""
    return _queue(c, _params(c), cursor)


@router.get("/alertas-nuevas", response_model=NewAlerts)
def arrived(c: ReaderPage, desde: Annotated[datetime, Query()]) -> NewAlerts:
    """For the queue's poll: the count only, so the list under the analyst stays put."""
    p = _params(c)
    now = utcnow()
    return NewAlerts(nuevas=alert_queue.arrived_since(c.session, p.filter, desde), hasta=iso(now))


@router.post("/alertas/lote")
def bulk(
    c: AnalystPage,
    services: ServicesDep,
    accion: Annotated[str, Form(max_length=20)] = "",
    ids: Annotated[list[str], Form(max_length=alert_bulk.MOST)] = [],  # noqa: B006
    motivo: Annotated[str, Form(max_length=40)] = "",
    analista: Annotated[str, Form(max_length=200)] = "",
    incidente: Annotated[str, Form(max_length=12)] = "",
    volver: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Acknowledge, dismiss, assign, promote or attach the alerts chosen; back to the
    same queue (its filters kept) with a message, or the queue again with the reason
    and the same alerts still chosen."""
    entity_id, hidden = visibility(c.principal, None)
    p = queue_params.from_query(volver, entity_id, hidden, False)
    done: list[alert_bulk.Done] = []
    incident_id = int(incidente) if incidente.strip().isdigit() else None

    def action() -> None:
        done.append(
            alert_bulk.run(
                c.session,
                services.policy,
                accion,
                ids,
                c.principal.actor,
                reason=motivo,
                assignee=analista,
                incident_id=incident_id,
            )
        )

    def again(reason_text: str, code: int) -> Response:
        return _queue(c, p, error=reason_text, chosen=tuple(ids), http_status=code)

    answer = run_form(c.request, c.session, action, p.link(), again)
    if not done or not isinstance(answer, RedirectResponse):
        return answer
    d = done[0]
    word = "unassign" if d.action == "assign" and not analista.strip() else d.action
    said: dict[str, str] = {"hecho": word, "n": str(d.count)}
    if d.action == "dismiss":
        said["motivo"] = motivo
    if word == "assign":
        said["analista"] = analista.strip()
    if d.incident_id is not None:
        said["inc"] = str(d.incident_id)
    back = p.link()
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}{urlencode(said)}", status_code=303)
