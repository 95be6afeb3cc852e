"""The console's alert queue (issue 15): filters, sorting by any column, counts per
status, keyset pages and "how many arrived since" for the page's poll.

Every filter reads a column of `alerts` (migration 0019 added the received time, the
assignee, the observed value, both addresses and the free text); the default order,
newest received first, reads an index, alone or after the entity, status or sensor.
The kinds of indicator are MISP types grouped into plain words, kept as data
(vocab/alert_kinds.json)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from core.tokens import Role, TokenRow
from correlator.rows import AlertRow

KINDS_FILE = Path(__file__).parent / "vocab" / "alert_kinds.json"
STATUSES = ("new", "acknowledged", "in_incident", "dismissed")
# Severity in words, as the queue shows it beside the number (never colour alone).
SEVERITIES: dict[str, tuple[int | None, int | None]] = {
    "alta": (75, None),
    "media": (50, 75),
    "baja": (None, 50),
}
OTHER_KIND = "other"
PAGE = 50


@cache
def kinds() -> dict[str, tuple[str, ...]]:
    """Kind name → the MISP types it groups (the filter's list, in the file's order)."""
    data: dict[str, Any] = json.loads(KINDS_FILE.read_text())
    return {k: tuple(v) for k, v in data["kinds"].items()}


def kind_of(indicator_type: str) -> str:
    for name, types in kinds().items():
        if indicator_type in types:
            return name
    return OTHER_KIND


def severity_word(severity: int) -> str:
    return "alta" if severity >= 75 else "media" if severity >= 50 else "baja"


# The columns the queue sorts by, by the name the address uses (?orden=, "-" first
# for descending). Nullable text sorts as "" so that a keyset can pass over it.
SORTS: dict[str, Any] = {
    "recibida": AlertRow.received_at,
    "primera": AlertRow.timestamp,
    "ultima": AlertRow.last_seen,
    "eventos": AlertRow.count,
    "gravedad": AlertRow.severity,
    "sensor": AlertRow.observer,
    "entidad": func.coalesce(AlertRow.entity_id, ""),
    "estado": AlertRow.status,
    "tipo": AlertRow.indicator_type,
    "valor": AlertRow.atomic,
    "origen": func.coalesce(AlertRow.source_ip, ""),
    "destino": func.coalesce(AlertRow.destination_ip, ""),
    "asignada": func.coalesce(AlertRow.assignee, ""),
}
DATETIME_SORTS = ("recibida", "primera", "ultima")
DEFAULT_SORT = "-recibida"


@dataclass(frozen=True)
class QueueFilter:
    status: str | None = None
    entity_id: str | None = None
    sensor: str | None = None
    kind: str | None = None
    severity: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    seen_from: datetime | None = None
    seen_to: datetime | None = None
    text: str | None = None
    assignee: str | None = None  # an actor, or "" for alerts nobody works
    hide_tlp: tuple[str, ...] = field(default_factory=tuple)


class BadCursor(ValueError):
    """A cursor the queue did not give out, or one of another order."""


def _conditions(f: QueueFilter, with_status: bool = True) -> list[ColumnElement[bool]]:
    c: list[ColumnElement[bool]] = []
    if with_status and f.status:
        c.append(AlertRow.status == f.status)
    if f.entity_id:
        c.append(AlertRow.entity_id == f.entity_id)
    if f.sensor:
        c.append(AlertRow.observer == f.sensor)
    if f.kind == OTHER_KIND:
        c.append(AlertRow.indicator_type.not_in([t for ts in kinds().values() for t in ts]))
    elif f.kind:
        c.append(AlertRow.indicator_type.in_(kinds()[f.kind]))
    if f.severity:
        low, high = SEVERITIES[f.severity]
        if low is not None:
            c.append(AlertRow.severity >= low)
        if high is not None:
            c.append(AlertRow.severity < high)
    if f.received_from:
        c.append(AlertRow.received_at >= f.received_from)
    if f.received_to:
        c.append(AlertRow.received_at < f.received_to)
    # Seen in the range: the alert's events [first, last] overlap it.
    if f.seen_from:
        c.append(AlertRow.last_seen >= f.seen_from)
    if f.seen_to:
        c.append(AlertRow.timestamp < f.seen_to)
    if f.text:
        c.append(AlertRow.search_text.contains(f.text.strip().lower(), autoescape=True))
    if f.assignee == "":
        c.append(AlertRow.assignee.is_(None))
    elif f.assignee:
        c.append(AlertRow.assignee == f.assignee)
    if f.hide_tlp:
        c.append(AlertRow.tlp.not_in(list(f.hide_tlp)))
    return c


def parse_sort(sort: str) -> tuple[str, bool]:
    """(column name, descending); None of ours → ValueError."""
    name = sort.removeprefix("-")
    if name not in SORTS:
        raise ValueError(sort)
    return name, sort.startswith("-")


def _encode(sort: str, value: object, alert_id: str) -> str:
    raw = value.isoformat() if isinstance(value, datetime) else value
    return base64.urlsafe_b64encode(json.dumps([sort, raw, alert_id]).encode()).decode()


def _decode(sort: str, cursor: str) -> tuple[object, str]:
    try:
        got_sort, raw, alert_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if got_sort != sort or not isinstance(alert_id, str):
            raise BadCursor(cursor)
        name, _ = parse_sort(sort)
        if name in DATETIME_SORTS:
            return datetime.fromisoformat(raw), alert_id
        if not isinstance(raw, str | int):
            raise BadCursor(cursor)
        return raw, alert_id
    except (ValueError, TypeError, UnicodeDecodeError):
        raise BadCursor(cursor) from None


def _key_value(row: AlertRow, name: str) -> object:
    attr = {
        "recibida": "received_at",
        "primera": "timestamp",
        "ultima": "last_seen",
        "eventos": "count",
        "gravedad": "severity",
        "sensor": "observer",
        "entidad": "entity_id",
        "estado": "status",
        "tipo": "indicator_type",
        "valor": "atomic",
        "origen": "source_ip",
        "destino": "destination_ip",
        "asignada": "assignee",
    }[name]
    value = getattr(row, attr)
    return "" if value is None else value


def page(
    session: Session,
    f: QueueFilter,
    sort: str = DEFAULT_SORT,
    cursor: str | None = None,
    limit: int = PAGE,
) -> tuple[list[AlertRow], str | None]:
    """One page of the queue in this order, and the cursor of the next (None: last)."""
    name, desc = parse_sort(sort)
    key = SORTS[name]
    q = select(AlertRow).where(*_conditions(f))
    if cursor:
        value, after = _decode(sort, cursor)
        if desc:
            q = q.where(or_(key < value, and_(key == value, AlertRow.id < after)))
        else:
            q = q.where(or_(key > value, and_(key == value, AlertRow.id > after)))
    order = (key.desc(), AlertRow.id.desc()) if desc else (key.asc(), AlertRow.id.asc())
    rows = list(session.execute(q.order_by(*order).limit(limit + 1)).scalars())
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        nxt = _encode(sort, _key_value(rows[-1], name), rows[-1].id)
    return rows, nxt


def counts(session: Session, f: QueueFilter) -> dict[str, int]:
    """How many alerts each status holds under the other filters (and "all")."""
    q = (
        select(AlertRow.status, func.count())
        .where(*_conditions(f, with_status=False))
        .group_by(AlertRow.status)
    )
    found = {s: 0 for s in STATUSES}
    for status, n in session.execute(q):
        found[status] = int(n)
    found["all"] = sum(found[s] for s in STATUSES)
    return found


def arrived_since(session: Session, f: QueueFilter, since: datetime) -> int:
    """Alerts under these filters received after `since` (the page's poll)."""
    q = select(func.count()).where(*_conditions(f), AlertRow.received_at > since)
    return int(session.execute(q).scalar_one())


def assignable(session: Session) -> list[str]:
    """The actors an alert can be given to: the CERT's analysts and admins whose token
    is not revoked ("analyst:ana"), by name."""
    q = select(TokenRow.role, TokenRow.name).where(
        TokenRow.role.in_([Role.ADMIN.value, Role.ANALYST.value]), TokenRow.revoked_at.is_(None)
    )
    return sorted({f"{role}:{name}" for role, name in session.execute(q)}, key=str.lower)
