"""Incidents: open one from alerts, extend, merge, split; edit its fields; notes and
tasks. Every change writes a timeline entry where people should see it, and an
audit record always."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from core.i18n import RECORD, text
from correlator.rows import AlertRow
from incidents import taxonomy
from incidents.errors import Conflict, IncidentError, NotFound
from incidents.models import (
    IncidentEntityRow,
    IncidentEntryRow,
    IncidentObservableRow,
    IncidentRow,
    IncidentTaskRow,
)
from incidents.policy import Policy
from rules.indicator import TLP_LEVELS, IndicatorError, normalise, supported_type

EDITABLE = ("title", "summary", "rsit_class", "rsit_type", "tlp", "pap", "ncciss")


def record(
    session: Session,
    inc: IncidentRow,
    kind: str,
    actor: str,
    body: str = "",
    tlp: str = "clear",
    entity_id: str | None = None,
    data: dict[str, Any] | None = None,
    **more: Any,
) -> None:
    """A timeline entry; `data` and keyword arguments are its details."""
    session.add(
        IncidentEntryRow(
            incident_id=inc.id,
            at=utcnow(),
            kind=kind,
            actor=actor,
            entity_id=entity_id,
            body=body,
            tlp=tlp,
            data={**(data or {}), **more},
        )
    )


def log_change(session: Session, actor: str, action: str, inc_id: int, **detail: Any) -> None:
    audit.append(session, actor, f"incident.{action}", "incident", str(inc_id), detail)


def get(session: Session, incident_id: int) -> IncidentRow:
    inc = session.get(IncidentRow, incident_id)
    if inc is None:
        raise NotFound("incident.not_found", incident_id=incident_id)
    return inc


def locked(session: Session, incident_id: int, version: int) -> IncidentRow:
    """The incident if the caller saw its current version; 409 otherwise."""
    inc = get(session, incident_id)
    if inc.version != version:
        raise Conflict(
            "incident.stale", incident_id=incident_id, version=version, current=inc.version
        )
    return inc


def entities_of(session: Session, incident_id: int) -> list[str]:
    q = select(IncidentEntityRow.entity_id).where(IncidentEntityRow.incident_id == incident_id)
    return list(session.execute(q.order_by(IncidentEntityRow.entity_id)).scalars())


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise IncidentError("incident.fields_unknown", fields=", ".join(sorted(unknown)))
    if "tlp" in fields and fields["tlp"] not in TLP_LEVELS:
        raise IncidentError("incident.tlp_invalid", allowed=", ".join(TLP_LEVELS))
    if "pap" in fields and fields["pap"] not in taxonomy.pap_levels():
        raise IncidentError("incident.pap_invalid", allowed=", ".join(taxonomy.pap_levels()))
    if "ncciss" in fields and str(fields["ncciss"]) not in taxonomy.vocab()["ncciss"]:
        raise IncidentError("incident.ncciss_invalid")
    if "title" in fields and not str(fields["title"]).strip():
        raise IncidentError("incident.title_missing")


def alerts_by_id(session: Session, alert_ids: Sequence[str]) -> list[AlertRow]:
    if not alert_ids:
        return []
    rows = session.execute(select(AlertRow).where(AlertRow.id.in_(alert_ids))).scalars().all()
    missing = set(alert_ids) - {r.id for r in rows}
    if missing:
        raise NotFound("alert.not_found", alert_id=sorted(missing)[0])
    return sorted(rows, key=lambda r: (r.timestamp, r.id))


def open_incident(
    session: Session,
    policy: Policy,
    actor: str,
    alert_ids: Sequence[str] = (),
    title: str = "",
    **fields: Any,
) -> IncidentRow:
    """A new incident, from alerts (promote) or from nothing (reported by phone, say)."""
    rows = alerts_by_id(session, alert_ids)
    for r in rows:
        if r.incident_id is not None:
            raise Conflict("alert.in_incident", alert_id=r.id, incident_id=r.incident_id)
    if not title.strip():
        title = auto_title(rows[0]) if rows else ""
    fields = {k: v for k, v in fields.items() if v is not None}
    _check_fields({"title": title, **fields})
    taxonomy.rsit().check(fields.get("rsit_class"), fields.get("rsit_type"))
    # The incident is at least as restricted as what it is made of, AMBER by default.
    tlp = fields.get("tlp") or max(["amber", *(r.tlp for r in rows)], key=TLP_LEVELS.index)
    ncciss = fields.get("ncciss")
    if ncciss is None:
        ncciss = taxonomy.ncciss_from_severity(max((r.severity for r in rows), default=0))
    now = utcnow()
    inc = IncidentRow(
        title=title.strip()[:300],
        summary=fields.get("summary", ""),
        rsit_class=fields.get("rsit_class"),
        rsit_type=fields.get("rsit_type"),
        tlp=tlp,
        pap=fields.get("pap", "amber"),
        ncciss=int(ncciss),
        priority=taxonomy.priority_of(int(ncciss)),
        status="new",
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    set_due_times(inc, policy)
    session.add(inc)
    session.flush()
    record(session, inc, "opened", actor, body=inc.title)
    log_change(session, actor, "open", inc.id, title=inc.title, alerts=[r.id for r in rows])
    link(session, inc, rows, actor)
    return inc


def auto_title(alert: AlertRow) -> str:
    doc = alert.doc
    org = doc.get("organization", {}).get("name")
    enr = doc["threat"]["enrichments"][0]
    if "rule" in doc:
        what = text(RECORD, "incident.title.rule", {"rule": doc["rule"]["name"]})
    else:
        found = {"type": enr["indicator"]["type"], "value": enr["matched"]["atomic"]}
        what = text(RECORD, "incident.title.indicator", found)
    return text(RECORD, "incident.title.of_entity", {"what": what, "entity": org}) if org else what


def set_due_times(inc: IncidentRow, policy: Policy) -> None:
    """The CERT's due times run from the opening, at the current priority."""
    start = inc.created_at
    inc.due_acknowledge = policy.due(inc.priority, "acknowledge", start)
    inc.due_contain = policy.due(inc.priority, "contain", start)
    inc.due_resolve = policy.due(inc.priority, "resolve", start)


def add_entity(session: Session, inc: IncidentRow, entity_id: str) -> bool:
    if session.get(IncidentEntityRow, (inc.id, entity_id)) is not None:
        return False
    session.add(IncidentEntityRow(incident_id=inc.id, entity_id=entity_id))
    return True


def link(session: Session, inc: IncidentRow, rows: Iterable[AlertRow], actor: str) -> int:
    """Put alerts into the incident: their entities, observables and times join it."""
    n = 0
    for r in rows:
        if r.incident_id == inc.id:
            continue
        r.incident_id, r.status, r.updated_at = inc.id, "in_incident", utcnow()
        if r.entity_id:
            add_entity(session, inc, r.entity_id)
        for enr in r.doc["threat"]["enrichments"]:
            ind = enr["indicator"]
            if enr["matched"]["type"] == "indicator_match":
                add_observable(session, inc, ind["type"], enr["matched"]["atomic"], r.tlp, "alert")
        if inc.occurred_at is None or r.timestamp < inc.occurred_at:
            inc.occurred_at = r.timestamp
        if inc.last_alert_at is None or r.last_seen > inc.last_alert_at:
            inc.last_alert_at = r.last_seen
        record(session, inc, "alert", actor, tlp=r.tlp, entity_id=r.entity_id, alert_id=r.id)
        n += 1
    if n:
        inc.updated_at = utcnow()
        log_change(session, actor, "link", inc.id, alerts=[r.id for r in rows])
    return n


def add_observable(
    session: Session, inc: IncidentRow, type_: str, value: str, tlp: str, source: str
) -> None:
    q = select(IncidentObservableRow.id).where(
        IncidentObservableRow.incident_id == inc.id,
        IncidentObservableRow.type == type_,
        IncidentObservableRow.value == value,
    )
    if session.execute(q).first() is None:
        session.add(
            IncidentObservableRow(
                incident_id=inc.id, type=type_, value=value, tlp=tlp, source=source
            )
        )
        session.flush()


def update(
    session: Session,
    policy: Policy,
    incident_id: int,
    version: int,
    actor: str,
    fields: dict[str, Any],
) -> IncidentRow:
    inc = locked(session, incident_id, version)
    _check_fields(fields)
    taxonomy.rsit().check(
        fields.get("rsit_class", inc.rsit_class), fields.get("rsit_type", inc.rsit_type)
    )
    changed = {k: [getattr(inc, k), v] for k, v in fields.items() if getattr(inc, k) != v}
    if not changed:
        return inc
    for k, (_, v) in changed.items():
        setattr(inc, k, v.strip() if isinstance(v, str) and k in ("title",) else v)
    if "ncciss" in changed:
        inc.priority = taxonomy.priority_of(int(inc.ncciss))
        set_due_times(inc, policy)
    inc.updated_at = utcnow()
    record(session, inc, "update", actor, changes=changed)
    log_change(session, actor, "update", inc.id, changes=changed)
    return inc


def alerts_of(session: Session, incident_id: int) -> Sequence[AlertRow]:
    """The alerts in an incident, oldest first."""
    q = select(AlertRow).where(AlertRow.incident_id == incident_id)
    return session.execute(q.order_by(AlertRow.timestamp, AlertRow.id)).scalars().all()


def add_observable_by_hand(
    session: Session, incident_id: int, actor: str, type_: str, value: str, tlp: str
) -> None:
    """An observable the analyst learnt elsewhere (the entity's logs, a report)."""
    inc = get(session, incident_id)
    if not supported_type(type_):
        raise IncidentError("observable.type_unknown", type=type_)
    if tlp not in TLP_LEVELS:
        raise IncidentError("incident.tlp_invalid", allowed=", ".join(TLP_LEVELS))
    try:
        clean = normalise(type_, value)
    except IndicatorError as exc:
        raise IncidentError("observable.invalid", reason=str(exc)) from None
    add_observable(session, inc, type_, clean, tlp, "analyst")
    record(session, inc, "observable", actor, f"{type_}: {clean}", tlp=tlp)
    log_change(session, actor, "observable", inc.id, type=type_, value=clean)


def add_note(session: Session, incident_id: int, actor: str, body: str, tlp: str) -> None:
    inc = get(session, incident_id)
    if not body.strip():
        raise IncidentError("note.empty")
    if tlp not in TLP_LEVELS:
        raise IncidentError("incident.tlp_invalid", allowed=", ".join(TLP_LEVELS))
    record(session, inc, "note", actor, body=body.strip(), tlp=tlp)
    log_change(session, actor, "note", inc.id, tlp=tlp, length=len(body))


def add_task(
    session: Session, incident_id: int, actor: str, title: str, assignee: str
) -> IncidentTaskRow:
    inc = get(session, incident_id)
    if not title.strip():
        raise IncidentError("task.title_missing")
    task = IncidentTaskRow(
        incident_id=inc.id,
        title=title.strip()[:300],
        assignee=assignee.strip(),
        status="open",
        created_at=utcnow(),
    )
    session.add(task)
    session.flush()
    record(session, inc, "task", actor, body=task.title, task_id=task.id)
    log_change(session, actor, "task.add", inc.id, task=task.id, title=task.title)
    return task


def set_task(
    session: Session, incident_id: int, task_id: int, version: int, done: bool, actor: str
) -> IncidentTaskRow:
    task = session.get(IncidentTaskRow, task_id)
    if task is None or task.incident_id != incident_id:
        raise NotFound("task.not_found", task_id=task_id, incident_id=incident_id)
    if task.version != version:
        raise Conflict("task.stale", task_id=task_id, version=version, current=task.version)
    status = "done" if done else "open"
    if task.status != status:
        task.status, task.done_at = status, utcnow() if done else None
        record(session, get(session, incident_id), "task", actor, body=task.title, status=status)
        log_change(session, actor, "task.set", incident_id, task=task_id, status=status)
    return task
