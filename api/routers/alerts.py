"""`/api/v1/alerts`: search with filters and cursor pagination; detail; triage status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from api.deps import Analyst, Reader, ServicesDep, SessionDep, visibility, visible_alert
from api.schemas.alerts import AlertOut, AlertPage, StatusIn
from core.cursor import CursorError
from core.tokens import Principal
from correlator.rows import AlertRow
from correlator.store import AlertFilter
from incidents import triage

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


@router.get("", response_model=AlertPage)
def list_alerts(
    session: SessionDep,
    principal: Reader,
    services: ServicesDep,
    since: Annotated[datetime | None, Query(description="first seen at or after")] = None,
    until: Annotated[datetime | None, Query(description="first seen before")] = None,
    indicator_type: Annotated[str | None, Query(max_length=64)] = None,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[
        Literal["new", "acknowledged", "in_incident", "dismissed"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> AlertPage:
    entity_id, hidden = visibility(principal, entity)
    f = AlertFilter(since, until, indicator_type, entity_id, status, hidden)
    try:
        rows, nxt = services.search_alerts(session, f, limit, cursor)
    except CursorError as exc:
        raise HTTPException(422, str(exc)) from None
    return AlertPage(alerts=[AlertOut.model_validate(r.to_ecs()) for r in rows], next_cursor=nxt)


def _visible(session: SessionDep, principal: Principal, alert_id: str) -> AlertRow:
    row = visible_alert(session, principal, alert_id)
    if row is None:
        raise HTTPException(404, "no such alert")
    return row


@router.get("/{alert_id}", response_model=AlertOut)
def get_alert(alert_id: str, session: SessionDep, principal: Reader) -> AlertOut:
    return AlertOut.model_validate(_visible(session, principal, alert_id).to_ecs())


@router.patch("/{alert_id}", response_model=AlertOut)
def set_status(alert_id: str, body: StatusIn, session: SessionDep, principal: Analyst) -> AlertOut:
    row = triage.set_status(session, alert_id, body.status, body.reason, principal.actor)
    if row is None:
        raise HTTPException(404, "no such alert")
    return AlertOut.model_validate(row.to_ecs())
