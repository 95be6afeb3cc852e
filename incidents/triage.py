"""Alert triage: the states an analyst moves an alert through, audited."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from correlator import sightings
from correlator.rows import AlertRow
from correlator.store import AlertStore
from incidents import service
from incidents.errors import Conflict, IncidentError

ALERT_STATES = ("new", "acknowledged", "dismissed")  # what an analyst sets by hand
# "in_incident" is set only by linking the alert to an incident.
DISMISS_REASONS = ("false_positive", "benign", "duplicate", "out_of_scope")


class TriageError(IncidentError):
    """A triage refused: 422."""


class InIncident(TriageError, Conflict):
    """The alert belongs to an incident: it is worked there (split it out first)."""


def set_status(
    session: Session, alert_id: str, status: str, reason: str | None, actor: str
) -> AlertRow | None:
    if status not in ALERT_STATES:
        raise TriageError("alert.status_invalid", allowed=", ".join(ALERT_STATES))
    if status == "dismissed" and reason not in DISMISS_REASONS:
        raise TriageError("alert.dismiss_reason", allowed=", ".join(DISMISS_REASONS))
    row = AlertStore.get(session, alert_id)
    if row is None:
        return None
    if row.incident_id is not None:
        if status != "dismissed":
            raise InIncident(
                "alert.worked_in_incident", alert_id=alert_id, incident_id=row.incident_id
            )
        # Dismissing takes the alert out of its incident, on that incident's timeline.
        inc = service.get(session, row.incident_id)
        row.incident_id = None
        service.record(session, inc, "dismissed", actor, reason or "", alert_id=alert_id)
    if row.status == status:
        return row
    previous = row.status
    row.status = status
    row.updated_at = utcnow()
    # What the analyst concluded goes back to the indicators' source (MISP sightings).
    if status == "acknowledged":
        sightings.enqueue(session, alert_id, row.doc, sightings.SIGHTING)
    elif status == "dismissed" and reason == "false_positive":
        sightings.enqueue(session, alert_id, row.doc, sightings.FALSE_POSITIVE)
    audit.append(
        session,
        actor,
        "alert.status",
        "alert",
        alert_id,
        {"from": previous, "to": status, "reason": reason},
    )
    return row
