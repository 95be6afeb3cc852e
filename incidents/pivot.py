"""Pivots: everything the centre holds about one value (an address, a domain, a hash,
a URL or an indicator value): its alerts, the incidents it is an observable of, and
the stored observations it appears in, with first and last seen.

A value is matched whole, as a JSON string inside the stored documents (`"evil.example"`
does not find `www.evil.example`, nor `1.2.3.4` find `11.2.3.45`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from correlator.rows import AlertRow, ObservationRow
from incidents.models import IncidentEntityRow, IncidentObservableRow, IncidentRow

LIMIT = 100  # rows shown per kind; the counts say how many there are


def _as_json(value: str) -> str:
    # How the value reads inside a stored JSON document (core.db writes orjson).
    return orjson.dumps(value).decode()


def _doc_holds(column: object, value: str) -> object:
    return cast(column, String).contains(_as_json(value), autoescape=True)


def alerts_with(
    session: Session,
    value: str,
    entity_id: str | None,
    hide_tlp: Sequence[str] = (),
    limit: int = LIMIT,
) -> list[AlertRow]:
    """The alerts whose document holds the value, newest first; an entity's own only,
    and none at a TLP it may not see."""
    q = select(AlertRow).where(_doc_holds(AlertRow.doc, value))  # type: ignore[arg-type]
    if entity_id:
        q = q.where(AlertRow.entity_id == entity_id)
    if hide_tlp:
        q = q.where(AlertRow.tlp.not_in(list(hide_tlp)))
    q = q.order_by(AlertRow.timestamp.desc(), AlertRow.id).limit(limit)
    return list(session.execute(q).scalars())


def incidents_with(
    session: Session,
    value: str,
    entity_id: str | None,
    hide_tlp: Sequence[str] = (),
    limit: int = LIMIT,
) -> list[IncidentRow]:
    """The incidents holding the value as an observable, newest first; for an entity,
    only incidents it is named in, and not through an observable it may not see."""
    q = select(IncidentRow).where(
        IncidentRow.id.in_(
            select(IncidentObservableRow.incident_id).where(
                IncidentObservableRow.value == value,
                *([IncidentObservableRow.tlp.not_in(list(hide_tlp))] if hide_tlp else []),
            )
        )
    )
    if entity_id:
        q = q.where(
            IncidentRow.id.in_(
                select(IncidentEntityRow.incident_id).where(
                    IncidentEntityRow.entity_id == entity_id
                )
            )
        )
    q = q.order_by(IncidentRow.created_at.desc(), IncidentRow.id.desc()).limit(limit)
    return list(session.execute(q).scalars())


@dataclass(frozen=True)
class Sightings:
    """The stored observations a value appears in, over time."""

    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    latest: list[ObservationRow]  # newest first, up to the limit


def observations_with(session: Session, value: str, limit: int = LIMIT) -> Sightings:
    holds = _doc_holds(ObservationRow.doc, value)
    count, first, last = session.execute(
        select(
            func.count(), func.min(ObservationRow.timestamp), func.max(ObservationRow.timestamp)
        ).where(holds)  # type: ignore[arg-type]
    ).one()
    rows = session.execute(
        select(ObservationRow)
        .where(holds)  # type: ignore[arg-type]
        .order_by(ObservationRow.timestamp.desc(), ObservationRow.id.desc())
        .limit(limit)
    ).scalars()
    return Sightings(int(count), first, last, list(rows))
