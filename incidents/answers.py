"""The affected entity's side: it acknowledges a notice and replies on the timeline."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.clock import utcnow
from incidents.errors import IncidentError, NotFound
from incidents.models import IncidentEntityRow
from incidents.service import get, log_change, record


def _named(session: Session, incident_id: int, entity_id: str) -> IncidentEntityRow:
    row = session.get(IncidentEntityRow, (incident_id, entity_id))
    if row is None:  # the same answer as for an incident that does not exist
        raise NotFound("incident.not_found", incident_id=incident_id)
    return row


def acknowledge(session: Session, incident_id: int, entity_id: str, actor: str) -> bool:
    """Stops the entity's reply clock; False if it had already acknowledged."""
    row = _named(session, incident_id, entity_id)
    if row.acknowledged_at is not None:
        return False
    row.acknowledged_at = utcnow()
    record(session, get(session, incident_id), "ack", actor, entity_id=entity_id)
    log_change(session, actor, "entity.ack", incident_id, entity=entity_id)
    return True


def reply(session: Session, incident_id: int, entity_id: str, actor: str, body: str) -> None:
    """A reply is visible to the CERT and to the entity itself, never to other entities."""
    if not body.strip():
        raise IncidentError("reply.empty")
    row = _named(session, incident_id, entity_id)
    now = utcnow()
    row.replied_at = now
    if row.acknowledged_at is None:
        row.acknowledged_at = now
    record(
        session,
        get(session, incident_id),
        "reply",
        actor,
        body=body.strip()[:20000],
        tlp="amber+strict",
        entity_id=entity_id,
    )
    log_change(session, actor, "entity.reply", incident_id, entity=entity_id, length=len(body))
