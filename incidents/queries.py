"""Incident search for the queue: filters and cursor pagination, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from core.cursor import CursorError, decode_cursor, encode_cursor
from incidents import taxonomy
from incidents.errors import IncidentError
from incidents.models import IncidentEntityRow, IncidentRow, SlaBreachRow


@dataclass
class IncidentFilter:
    status: str | None = None  # a state, or "open" for every open state
    priority: str | None = None
    entity_id: str | None = None
    rsit_class: str | None = None
    breached: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


def _uncursor(cursor: str) -> tuple[datetime, int]:
    try:
        ts, key = decode_cursor(cursor)
        return ts, int(key)
    except (CursorError, ValueError):
        raise IncidentError("incident.cursor_invalid") from None


def search(
    session: Session, f: IncidentFilter, limit: int, cursor: str | None
) -> tuple[Sequence[IncidentRow], str | None]:
    q = select(IncidentRow)
    if f.status == "open":
        q = q.where(IncidentRow.status.in_(taxonomy.vocab()["open_states"]))
    elif f.status:
        q = q.where(IncidentRow.status == f.status)
    if f.priority:
        q = q.where(IncidentRow.priority == f.priority)
    if f.rsit_class:
        q = q.where(IncidentRow.rsit_class == f.rsit_class)
    if f.entity_id:
        q = q.where(
            exists().where(
                IncidentEntityRow.incident_id == IncidentRow.id,
                IncidentEntityRow.entity_id == f.entity_id,
            )
        )
    if f.breached is not None:
        late = exists().where(SlaBreachRow.incident_id == IncidentRow.id)
        q = q.where(late if f.breached else ~late)
    if f.since:
        q = q.where(IncidentRow.created_at >= f.since)
    if f.until:
        q = q.where(IncidentRow.created_at < f.until)
    if cursor:
        ts, iid = _uncursor(cursor)
        q = q.where(
            or_(
                IncidentRow.created_at < ts,
                and_(IncidentRow.created_at == ts, IncidentRow.id < iid),
            )
        )
    q = q.order_by(IncidentRow.created_at.desc(), IncidentRow.id.desc()).limit(limit + 1)
    rows = session.execute(q).scalars().all()
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        nxt = encode_cursor(rows[-1].created_at, rows[-1].id)
    return rows, nxt
