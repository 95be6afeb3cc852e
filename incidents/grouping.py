"""Alerts into incidents, automatically.

An alert joins an open incident of the same entity whose last alert is within
the window, when they share an indicator value, a MISP event or the entity's
internal host (the end of the flow that is not the indicator). Otherwise a
severe enough alert opens an incident of its own; the rest wait in the queue
for an analyst to promote them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from correlator.rows import AlertRow
from incidents import service, taxonomy
from incidents.models import AlertKeyRow, IncidentEntityRow, IncidentRow
from incidents.policy import Policy

ACTOR = "system:grouping"
log = logging.getLogger("vigia.incidents")


def keys(doc: dict[str, Any]) -> set[str]:
    """What an alert can share with another: indicator values, MISP events, the host."""
    out: set[str] = set()
    for enr in doc["threat"]["enrichments"]:
        out.add(f"value:{enr['matched']['atomic']}")
        ref = enr["indicator"].get("reference")
        if ref:
            out.add(f"event:{ref}")
        if enr["matched"]["type"] == "yara_match":
            out.add(f"rule:{enr['indicator']['value']}")
    if doc.get("organization"):  # only an entity's own end is an internal host
        field = doc["threat"]["enrichments"][0]["matched"]["field"]
        host = doc["destination"]["ip"] if field == "source.ip" else doc["source"]["ip"]
        out.add(f"host:{host}")
    return out


def digests(doc: dict[str, Any]) -> set[str]:
    """The keys of an alert as stored: fixed-size digests (values can be long URLs)."""
    return {hashlib.sha1(k.encode(), usedforsecurity=False).hexdigest() for k in keys(doc)}


def remember(session: Session, alert_id: str, mine: set[str]) -> None:
    """Store an alert's keys, those it lacks only (grouping may see an alert twice)."""
    held = set(
        session.execute(select(AlertKeyRow.key).where(AlertKeyRow.alert_id == alert_id)).scalars()
    )
    session.add_all(AlertKeyRow(alert_id=alert_id, key=k) for k in sorted(mine - held))


def _sharing(
    session: Session, entity_id: str | None, since: datetime, mine: set[str]
) -> IncidentRow | None:
    """The open incident of the same entity, last alerted within the window, with an
    alert sharing a key; the most recently alerted when several do."""
    q = (
        select(IncidentRow)
        .join(AlertRow, AlertRow.incident_id == IncidentRow.id)
        .join(AlertKeyRow, AlertKeyRow.alert_id == AlertRow.id)
        .where(
            AlertKeyRow.key.in_(sorted(mine)),
            IncidentRow.status.in_(taxonomy.vocab()["open_states"]),
            IncidentRow.merged_into.is_(None),
            IncidentRow.last_alert_at >= since,
        )
    )
    if entity_id:
        q = q.join(IncidentEntityRow, IncidentEntityRow.incident_id == IncidentRow.id).where(
            IncidentEntityRow.entity_id == entity_id
        )
    else:
        q = q.where(~IncidentRow.id.in_(select(IncidentEntityRow.incident_id)))
    q = q.order_by(IncidentRow.last_alert_at.desc(), IncidentRow.id.desc()).limit(1)
    return session.execute(q).scalars().first()


def group(session: Session, policy: Policy, alert_ids: Iterable[str]) -> set[int]:
    """Place each ungrouped alert; the ids of the incidents opened or extended."""
    touched: set[int] = set()
    for alert_id in alert_ids:
        row = session.get(AlertRow, alert_id)
        if row is None or row.incident_id is not None or row.status != "new":
            continue
        mine = digests(row.doc)
        remember(session, row.id, mine)
        target = _sharing(session, row.entity_id, row.timestamp - policy.window, mine)
        if target is not None:
            service.link(session, target, [row], ACTOR)
        elif row.severity >= policy.min_severity:
            target = service.open_incident(session, policy, ACTOR, [row.id])
        else:
            continue
        session.flush()  # the next alert of the batch finds this one's incident
        touched.add(target.id)
    return touched


def backfill(session: Session) -> int:
    """Keys for alerts in incidents that have none (placed by hand before grouping
    saw them, or stored before keys were): how many alerts were given keys."""
    q = select(AlertRow).where(
        AlertRow.incident_id.is_not(None),
        ~select(AlertKeyRow.alert_id).where(AlertKeyRow.alert_id == AlertRow.id).exists(),
    )
    rows = session.execute(q).scalars().all()
    for row in rows:
        remember(session, row.id, digests(row.doc))
    return len(rows)


def group_safely(session: Session, policy: Policy, alert_ids: Iterable[str]) -> set[int]:
    """Grouping inside ingest's transaction: a failure here must not lose the batch,
    so it runs in a savepoint and the sweep job tries those alerts again."""
    try:
        with session.begin_nested():
            return group(session, policy, alert_ids)
    except Exception:
        log.exception("grouping failed; the sweep will retry")
        return set()


def sweep(session: Session, policy: Policy, since: datetime) -> set[int]:
    """Group the new alerts updated since then that no hook placed (retro-hunt, failures)."""
    backfill(session)
    q = select(AlertRow.id).where(
        AlertRow.status == "new", AlertRow.incident_id.is_(None), AlertRow.updated_at >= since
    )
    return group(session, policy, list(session.execute(q.order_by(AlertRow.timestamp)).scalars()))
