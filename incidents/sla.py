"""SLAs: the CERT's due times (acknowledge, contain, resolve) and each entity's
reply; breaches found by a scheduled job, kept for the metrics, shown in the queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from incidents import taxonomy
from incidents.models import IncidentEntityRow, IncidentRow, SlaBreachRow
from incidents.service import log_change, record

ACTOR = "system:sla"


@dataclass(frozen=True)
class Breach:
    incident_id: int
    clock: str  # acknowledge | contain | resolve | entity_reply
    entity_id: str  # "" for the CERT's own clocks
    due_at: datetime


def _cert_clocks(inc: IncidentRow) -> list[tuple[str, datetime | None, datetime | None]]:
    """(clock, due, met at) for the CERT's three clocks."""
    return [
        ("acknowledge", inc.due_acknowledge, inc.acknowledged_at),
        ("contain", inc.due_contain, inc.contained_at),
        ("resolve", inc.due_resolve, inc.resolved_at),
    ]


def late(inc: IncidentRow, entities: list[IncidentEntityRow], now: datetime) -> list[Breach]:
    """Every clock of this incident that ran out before it was met (or is still unmet)."""
    if inc.merged_into is not None or inc.resolution in ("false_positive", "duplicate"):
        return []
    out = [
        Breach(inc.id, clock, "", due)
        for clock, due, met in _cert_clocks(inc)
        if due is not None and (met or now) > due
    ]
    out += [
        Breach(inc.id, "entity_reply", e.entity_id, e.reply_due)
        for e in entities
        if e.reply_due is not None and (e.acknowledged_at or now) > e.reply_due
    ]
    return out


def find_breaches(session: Session, now: datetime) -> list[Breach]:
    """The job: record breaches of open incidents not seen before, on their timelines."""
    open_states = taxonomy.vocab()["open_states"]
    incidents = session.execute(
        select(IncidentRow).where(IncidentRow.status.in_([*open_states, "resolved"]))
    ).scalars()
    fresh: list[Breach] = []
    for inc in incidents:
        ents = list(
            session.execute(
                select(IncidentEntityRow).where(IncidentEntityRow.incident_id == inc.id)
            ).scalars()
        )
        for b in late(inc, ents, now):
            if session.get(SlaBreachRow, (b.incident_id, b.clock, b.entity_id)) is not None:
                continue
            session.add(
                SlaBreachRow(
                    incident_id=b.incident_id,
                    clock=b.clock,
                    entity_id=b.entity_id,
                    due_at=b.due_at,
                    found_at=now,
                )
            )
            who = f" ({b.entity_id})" if b.entity_id else ""
            record(
                session,
                inc,
                "breach",
                ACTOR,
                body=f"SLA {b.clock}{who} vencido",
                entity_id=b.entity_id or None,
                clock=b.clock,
                due=b.due_at.isoformat(),
            )
            log_change(session, ACTOR, "sla.breach", inc.id, clock=b.clock, entity=b.entity_id)
            fresh.append(b)
    return fresh


def recorded(session: Session, incident_ids: list[int]) -> dict[int, list[str]]:
    """The breaches the job recorded, by incident: what the queue shows."""
    out: dict[int, list[str]] = {}
    if not incident_ids:
        return out
    q = select(SlaBreachRow).where(SlaBreachRow.incident_id.in_(incident_ids))
    for b in session.execute(q.order_by(SlaBreachRow.due_at)).scalars():
        out.setdefault(b.incident_id, []).append(
            f"{b.clock}:{b.entity_id}" if b.entity_id else b.clock
        )
    return out


def _state(due: datetime, met: datetime | None, now: datetime, stopped: bool) -> tuple[str, int]:
    """How a clock stands, and the minutes it is (or was) ahead of or past its due time."""
    if met is not None:
        return ("met" if met <= due else "met_late"), round(abs((due - met).total_seconds()) / 60)
    if stopped:
        return "stopped", 0
    return ("running" if now <= due else "overdue"), round(abs((due - now).total_seconds()) / 60)


def clocks(
    inc: IncidentRow, entities: list[IncidentEntityRow], now: datetime
) -> list[dict[str, object]]:
    """Every clock of the incident as a person reads it: the due time, when it was met,
    and whether it is running (minutes left), overdue (minutes past), met in time or
    late, or stopped (the incident ended without passing that point)."""
    ended = inc.status in ("resolved", "closed") or inc.merged_into is not None
    out: list[dict[str, object]] = []
    rows = [(c, "", due, met) for c, due, met in _cert_clocks(inc)]
    rows += [("entity_reply", e.entity_id, e.reply_due, e.acknowledged_at) for e in entities]
    for clock, entity_id, due, met in rows:
        if due is None:
            continue
        state, minutes = _state(due, met, now, ended)
        out.append(
            {
                "clock": clock,
                "entity": entity_id,
                "due": due.isoformat(),
                "met": met.isoformat() if met else None,
                "state": state,
                "minutes": minutes,
            }
        )
    return out
