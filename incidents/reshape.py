"""Reshaping incidents by hand: link alerts, merge incidents, split alerts out."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import utcnow
from incidents.errors import Conflict, IncidentError
from incidents.models import IncidentEntityRow, IncidentObservableRow, IncidentRow
from incidents.policy import Policy
from incidents.service import (
    add_entity,
    add_observable,
    alerts_by_id,
    alerts_of,
    entities_of,
    get,
    link,
    locked,
    log_change,
    open_incident,
    record,
)


def link_by_hand(
    session: Session, incident_id: int, version: int, alert_ids: Sequence[str], actor: str
) -> IncidentRow:
    inc = locked(session, incident_id, version)
    rows = alerts_by_id(session, alert_ids)
    for r in rows:
        if r.incident_id not in (None, inc.id):
            raise Conflict("alert.in_other_incident", alert_id=r.id, incident_id=r.incident_id)
    link(session, inc, rows, actor)
    return inc


def merge(
    session: Session, target_id: int, version: int, source_ids: Sequence[int], actor: str
) -> IncidentRow:
    """Fold other incidents into this one; each is closed as a duplicate pointing here."""
    target = locked(session, target_id, version)
    if not source_ids or target_id in source_ids:
        raise IncidentError("incident.merge_needs_sources")
    now = utcnow()
    for sid in source_ids:
        src = get(session, sid)
        if src.merged_into is not None:
            raise Conflict("incident.already_merged", incident_id=sid, target=src.merged_into)
        moving = list(alerts_of(session, sid))
        for r in moving:
            r.incident_id = None  # so that link() moves it
        link(session, target, moving, actor)
        for e in entities_of(session, sid):
            add_entity(session, target, e)
        for o in session.execute(
            select(IncidentObservableRow).where(IncidentObservableRow.incident_id == sid)
        ).scalars():
            add_observable(session, target, o.type, o.value, o.tlp, o.source)
        if src.occurred_at and (target.occurred_at is None or src.occurred_at < target.occurred_at):
            target.occurred_at = src.occurred_at
        src.status, src.resolution, src.merged_into = "closed", "duplicate", target.id
        src.closed_at = src.resolved_at = src.updated_at = now
        record(session, src, "merged", actor, into=target.id)
        record(session, target, "merged", actor, sources=[sid])
    target.updated_at = now
    log_change(session, actor, "merge", target.id, sources=list(source_ids))
    return target


def split(
    session: Session,
    policy: Policy,
    incident_id: int,
    version: int,
    alert_ids: Sequence[str],
    actor: str,
    title: str = "",
) -> IncidentRow:
    """Take alerts out of an incident into a new one of the same classification."""
    inc = locked(session, incident_id, version)
    rows = alerts_by_id(session, alert_ids)
    if not rows:
        raise IncidentError("incident.split_needs_alerts")
    for r in rows:
        if r.incident_id != inc.id:
            raise IncidentError("alert.not_in_incident", alert_id=r.id, incident_id=inc.id)
    remaining = [a for a in alerts_of(session, inc.id) if a.id not in set(alert_ids)]
    for r in rows:
        r.incident_id, r.status = None, "new"
    new = open_incident(
        session,
        policy,
        actor,
        [r.id for r in rows],
        title,
        rsit_class=inc.rsit_class,
        rsit_type=inc.rsit_type,
        tlp=inc.tlp,
        pap=inc.pap,
        ncciss=inc.ncciss,
    )
    # What the remaining alerts no longer name leaves the old incident.
    keep_entities = {a.entity_id for a in remaining if a.entity_id}
    for e in session.execute(
        select(IncidentEntityRow).where(IncidentEntityRow.incident_id == inc.id)
    ).scalars():
        if e.entity_id not in keep_entities and any(r.entity_id == e.entity_id for r in rows):
            session.delete(e)
    inc.occurred_at = min((a.timestamp for a in remaining), default=inc.occurred_at)
    inc.updated_at = utcnow()
    record(session, inc, "split", actor, alerts=list(alert_ids), into=new.id)
    log_change(session, actor, "split", inc.id, alerts=list(alert_ids), into=new.id)
    return new
