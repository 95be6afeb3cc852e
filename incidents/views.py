"""What a caller may read of an incident: the CERT sees all; an entity sees only
incidents that name it, and within them only what TLP lets it see.

TLP:RED stays with the CERT (named people); TLP:AMBER+STRICT reaches an entity
only when the incident concerns it alone or the item is its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import iso
from correlator.rows import AlertRow
from incidents import sla, taxonomy
from incidents.lifecycle import allowed
from incidents.models import (
    IncidentEntityRow,
    IncidentEntryRow,
    IncidentObservableRow,
    IncidentRow,
    IncidentTaskRow,
)
from incidents.service import alerts_of

# Timeline kinds an entity sees (the CERT's tasks, edits and breaches stay inside).
ENTITY_KINDS = frozenset({"opened", "alert", "status", "note", "notification", "ack", "reply"})


@dataclass(frozen=True)
class Viewer:
    entity_id: str | None = None  # None: CERT staff

    @property
    def staff(self) -> bool:
        return self.entity_id is None


def may_see(v: Viewer, tlp: str, owner: str | None, n_entities: int) -> bool:
    if v.staff:
        return True
    if tlp == "red" or (owner is not None and owner != v.entity_id):
        return False
    return tlp != "amber+strict" or owner == v.entity_id or n_entities <= 1


def _ts(d: datetime | None) -> str | None:
    return iso(d) if d else None


def summary(
    inc: IncidentRow, entities: list[IncidentEntityRow], v: Viewer, breaches: list[str]
) -> dict[str, Any]:
    mine = [e for e in entities if v.staff or e.entity_id == v.entity_id]
    return {
        "id": inc.id,
        "version": inc.version,
        "title": inc.title,
        "status": inc.status,
        "status_es": taxonomy.label_es(inc.status),
        "resolution": inc.resolution,
        "priority": inc.priority,
        "ncciss": inc.ncciss,
        "rsit": {"class": inc.rsit_class, "type": inc.rsit_type},
        "tlp": inc.tlp.upper(),
        "pap": inc.pap.upper(),
        "entities": [
            {
                "id": e.entity_id,
                "notified_at": _ts(e.notified_at),
                "reply_due": _ts(e.reply_due),
                "acknowledged_at": _ts(e.acknowledged_at),
                "replied_at": _ts(e.replied_at),
            }
            for e in mine
        ],
        "created_at": iso(inc.created_at),
        "updated_at": iso(inc.updated_at),
        "occurred_at": _ts(inc.occurred_at),
        "acknowledged_at": _ts(inc.acknowledged_at),
        "contained_at": _ts(inc.contained_at),
        "resolved_at": _ts(inc.resolved_at),
        "closed_at": _ts(inc.closed_at),
        "due": {
            "acknowledge": _ts(inc.due_acknowledge),
            "contain": _ts(inc.due_contain),
            "resolve": _ts(inc.due_resolve),
        },
        "merged_into": inc.merged_into,
        "owner": inc.owner if v.staff else None,
        "sla_breaches": breaches
        if v.staff
        else [b for b in breaches if b == f"entity_reply:{v.entity_id}"],
    }


def entities(session: Session, ids: list[int]) -> dict[int, list[IncidentEntityRow]]:
    out: dict[int, list[IncidentEntityRow]] = {i: [] for i in ids}
    if ids:
        q = select(IncidentEntityRow).where(IncidentEntityRow.incident_id.in_(ids))
        for e in session.execute(q.order_by(IncidentEntityRow.entity_id)).scalars():
            out[e.incident_id].append(e)
    return out


def summaries(session: Session, rows: list[IncidentRow], v: Viewer) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    ents, breaches = entities(session, ids), sla.recorded(session, ids)
    return [summary(r, ents[r.id], v, breaches.get(r.id, [])) for r in rows]


def detail(session: Session, inc: IncidentRow, v: Viewer) -> dict[str, Any]:
    ents = entities(session, [inc.id])[inc.id]
    n = len(ents)
    out = summary(inc, ents, v, sla.recorded(session, [inc.id]).get(inc.id, []))
    hidden = not may_see(v, inc.tlp, None, n)
    out["summary"] = "" if hidden else inc.summary
    out["redacted"] = hidden
    alerts = [a for a in alerts_of(session, inc.id) if may_see(v, a.tlp, a.entity_id, n)]
    out["alerts"] = [] if hidden else [_alert(a) for a in alerts]
    obs = session.execute(
        select(IncidentObservableRow).where(IncidentObservableRow.incident_id == inc.id)
    ).scalars()
    out["observables"] = (
        []
        if hidden
        else [
            {"type": o.type, "value": o.value, "tlp": o.tlp.upper()}
            for o in obs
            if may_see(v, o.tlp, None, n)
        ]
    )
    out["tasks"] = tasks(session, inc.id) if v.staff else []
    out["timeline"] = timeline(session, inc, alerts, v, n, hidden)
    out["transitions"] = allowed(inc.status) if v.staff and inc.merged_into is None else []
    return out


def _alert(a: AlertRow) -> dict[str, Any]:
    enr = a.doc["threat"]["enrichments"][0]
    return {
        "id": a.id,
        "timestamp": iso(a.timestamp),
        "count": a.count,
        "severity": a.severity,
        "entity": a.entity_id,
        "matched": enr["matched"],
        "indicator": {k: enr["indicator"].get(k) for k in ("type", "value", "provider")},
        "source": a.doc["source"],
        "destination": a.doc["destination"],
        "tlp": a.tlp.upper(),
    }


def tasks(session: Session, incident_id: int) -> list[dict[str, Any]]:
    q = select(IncidentTaskRow).where(IncidentTaskRow.incident_id == incident_id)
    return [
        {
            "id": t.id,
            "version": t.version,
            "title": t.title,
            "assignee": t.assignee,
            "status": t.status,
            "created_at": iso(t.created_at),
            "done_at": _ts(t.done_at),
        }
        for t in session.execute(q.order_by(IncidentTaskRow.id)).scalars()
    ]


def timeline(
    session: Session,
    inc: IncidentRow,
    alerts: list[AlertRow],
    v: Viewer,
    n_entities: int,
    hidden: bool,
) -> list[dict[str, Any]]:
    """Entries and the alerts' own times (when traffic was seen), oldest first."""
    items: list[tuple[datetime, int, dict[str, Any]]] = []
    if not hidden:
        for a in alerts:
            body = f"{a.doc['threat']['enrichments'][0]['matched']['atomic']} ×{a.count}"
            items.append((a.timestamp, 0, {"at": iso(a.timestamp), "kind": "seen", "body": body}))
    q = select(IncidentEntryRow).where(IncidentEntryRow.incident_id == inc.id)
    for e in session.execute(q.order_by(IncidentEntryRow.id)).scalars():
        if not v.staff:
            if e.kind not in ENTITY_KINDS or not may_see(v, e.tlp, e.entity_id, n_entities):
                continue
            if hidden and e.entity_id != v.entity_id and e.kind != "status":
                continue
        entry: dict[str, Any] = {
            "at": iso(e.at),
            "kind": e.kind,
            "actor": e.actor if v.staff else ("CERT" if e.entity_id != v.entity_id else e.actor),
            "entity": e.entity_id,
            "body": e.body,
            "tlp": e.tlp.upper(),
        }
        if v.staff or e.kind == "status":
            entry["data"] = e.data
        items.append((e.at, 1, entry))
    items.sort(key=lambda t: (t[0], t[1]))
    return [i for _, _, i in items]
