"""Console pages for one alert and for one value (issue 15): the alert laid out for a
person with its triage actions (acknowledge, dismiss, promote to a new incident), and
the pivot page listing a value's alerts, incidents and stored observations.

Who sees what is the API's rule (api.deps.visibility): an entity only its own alerts,
never TLP:RED; the same 404 for an alert it may not see as for one that does not exist."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console_deps import AnalystPage, ConsolePage, ReaderPage, run_form
from api.deps import ServicesDep, SessionDep, visibility, visible_alert
from core.tokens import Principal, Role
from correlator.rows import AlertRow
from incidents import pivot, service, triage

router = APIRouter(prefix="/console", include_in_schema=False)

AlertId = Annotated[str, Path(pattern="^[0-9a-f]{1,32}$")]
# The message shown after an action, by the word in ?hecho= (a fixed list: nothing
# the address carries is shown as it is).
DONE = {"acusada": "alert.done.acknowledged", "descartada": "alert.done.dismissed"}


def _visible(session: SessionDep, principal: Principal, alert_id: str) -> AlertRow:
    row = visible_alert(session, principal, alert_id)
    if row is None:
        raise HTTPException(404, "no existe esta alerta")
    return row


def _alert_page(
    c: ConsolePage,
    row: AlertRow,
    error: str | None = None,
    done: str | None = None,
    http_status: int = 200,
) -> HTMLResponse:
    doc = row.to_ecs()
    return c.page(
        "alert.html",
        http_status=http_status,
        a=doc,
        raw=json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True),
        can_act=c.principal.role in (Role.ADMIN, Role.ANALYST),
        reasons=triage.DISMISS_REASONS,
        error=error,
        done=done,
    )


@router.get("/alertas/{alert_id}", response_class=HTMLResponse)
def alert_page(
    c: ReaderPage, alert_id: AlertId, hecho: Annotated[str, Query(max_length=20)] = ""
) -> HTMLResponse:
    row = _visible(c.session, c.principal, alert_id)
    return _alert_page(c, row, done=DONE.get(hecho))


def _run(c: ConsolePage, row: AlertRow, action: Callable[[], object], back: str) -> Response:
    """An action on this alert: done, to `back`; refused, the alert's page with why."""

    def again(reason_text: str, code: int) -> Response:
        return _alert_page(c, row, error=reason_text, http_status=code)

    return run_form(c.request, c.session, action, back, again)


def _act(c: ConsolePage, alert_id: str, status: str, reason: str | None, done: str) -> Response:
    row = _visible(c.session, c.principal, alert_id)
    actor = c.principal.actor
    back = f"/console/alertas/{alert_id}?hecho={done}"
    return _run(c, row, lambda: triage.set_status(c.session, alert_id, status, reason, actor), back)


@router.post("/alertas/{alert_id}/acusar")
def acknowledge(c: AnalystPage, alert_id: AlertId) -> Response:
    """Acknowledged: a MISP sighting goes to the indicators' sources."""
    return _act(c, alert_id, "acknowledged", None, "acusada")


@router.post("/alertas/{alert_id}/descartar")
def dismiss(
    c: AnalystPage, alert_id: AlertId, reason: Annotated[str, Form(max_length=40)] = ""
) -> Response:
    """Dismissed with a reason from the list; a false positive is told to MISP."""
    return _act(c, alert_id, "dismissed", reason, "descartada")


@router.post("/alertas/{alert_id}/promover")
def promote(c: AnalystPage, alert_id: AlertId, services: ServicesDep) -> Response:
    """A new incident made of this alert; its page opens."""
    row = _visible(c.session, c.principal, alert_id)
    made: list[int] = []

    def action() -> None:
        made.append(
            service.open_incident(c.session, services.policy, c.principal.actor, [row.id]).id
        )

    done = _run(c, row, action, "/console/incidentes")
    if made and isinstance(done, RedirectResponse):
        return RedirectResponse(f"/console/incidentes/{made[0]}", status_code=303)
    return done


@router.get("/buscar", response_class=HTMLResponse)
def pivot_page(c: ReaderPage, q: Annotated[str, Query(max_length=2000)] = "") -> HTMLResponse:
    """A value's alerts and incidents; for the CERT's analysts, also its stored
    observations with first and last seen (an entity sees only what is its own)."""
    value, session, principal = q.strip(), c.session, c.principal
    entity_id, hidden = visibility(principal, None)
    alerts = pivot.alerts_with(session, value, entity_id, hidden) if value else []
    incidents = pivot.incidents_with(session, value, entity_id, hidden) if value else []
    analyst = principal.role in (Role.ADMIN, Role.ANALYST)
    seen = pivot.observations_with(session, value) if value and analyst else None
    return c.page(
        "pivot.html",
        q=value,
        alerts=[r.to_ecs() for r in alerts],
        incidents=incidents,
        seen=seen,
        limit=pivot.LIMIT,
    )
