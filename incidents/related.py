"""Incidents related to one: sharing an indicator or observable value, an affected
entity, or a MISP event with it, closed ones included (a new incident on the same
indicator as a closed one is linked to it)."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from correlator.rows import AlertRow
from incidents.models import AlertKeyRow, IncidentEntityRow, IncidentObservableRow, IncidentRow

LIMIT = 20  # per reason: the most recent


def _ids_by_value(session: Session, incident_id: int) -> set[int]:
    mine, other = aliased(IncidentObservableRow), aliased(IncidentObservableRow)
    q = (
        select(other.incident_id)
        .join(mine, (mine.type == other.type) & (mine.value == other.value))
        .where(mine.incident_id == incident_id, other.incident_id != incident_id)
        .distinct()
        .order_by(other.incident_id.desc())
        .limit(LIMIT)
    )
    return set(session.execute(q).scalars())


def _ids_by_entity(session: Session, incident_id: int, only: str | None) -> set[int]:
    mine, other = aliased(IncidentEntityRow), aliased(IncidentEntityRow)
    q = (
        select(other.incident_id)
        .join(mine, mine.entity_id == other.entity_id)
        .where(mine.incident_id == incident_id, other.incident_id != incident_id)
    )
    if only:
        q = q.where(mine.entity_id == only)
    q = q.distinct().order_by(other.incident_id.desc()).limit(LIMIT)
    return set(session.execute(q).scalars())


def _event_keys(session: Session, incident_id: int) -> set[str]:
    """The digests of the MISP events this incident's alerts came from (as grouping
    stores them: sha1 of "event:<reference>")."""
    docs = session.execute(select(AlertRow.doc).where(AlertRow.incident_id == incident_id))
    refs = {
        enr["indicator"].get("reference") for (doc,) in docs for enr in doc["threat"]["enrichments"]
    }
    return {
        hashlib.sha1(f"event:{r}".encode(), usedforsecurity=False).hexdigest() for r in refs if r
    }


def _ids_by_event(session: Session, incident_id: int) -> set[int]:
    keys = _event_keys(session, incident_id)
    if not keys:
        return set()
    q = (
        select(AlertRow.incident_id)
        .join(AlertKeyRow, AlertKeyRow.alert_id == AlertRow.id)
        .where(
            AlertKeyRow.key.in_(sorted(keys)),
            AlertRow.incident_id.is_not(None),
            AlertRow.incident_id != incident_id,
        )
        .distinct()
        .order_by(AlertRow.incident_id.desc())
        .limit(LIMIT)
    )
    return {i for i in session.execute(q).scalars() if i is not None}


def related(
    session: Session, incident_id: int, entity_id: str | None = None
) -> list[dict[str, object]]:
    """The related incidents, newest first, each with why ("value", "entity", "event");
    for an entity (`entity_id`), only incidents that name it."""
    why: dict[int, list[str]] = {}
    for reason, ids in (
        ("value", _ids_by_value(session, incident_id)),
        ("entity", _ids_by_entity(session, incident_id, entity_id)),
        ("event", _ids_by_event(session, incident_id)),
    ):
        for i in ids:
            why.setdefault(i, []).append(reason)
    if not why:
        return []
    q = select(IncidentRow).where(IncidentRow.id.in_(sorted(why)))
    if entity_id:
        q = q.where(
            IncidentRow.id.in_(
                select(IncidentEntityRow.incident_id).where(
                    IncidentEntityRow.entity_id == entity_id
                )
            )
        )
    rows = session.execute(q.order_by(IncidentRow.id.desc())).scalars()
    return [
        {
            "id": r.id,
            "title": r.title,
            "status": r.status,
            "resolution": r.resolution,
            "priority": r.priority,
            "why": why[r.id],
        }
        for r in rows
    ]
