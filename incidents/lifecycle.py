"""The incident lifecycle: new → triaged → in progress → contained → resolved →
closed, reopen; the allowed moves are data (vocab/incidents.json)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import utcnow
from correlator import sightings
from incidents import taxonomy
from incidents.errors import Conflict, IncidentError
from incidents.models import IncidentEntryRow, IncidentRow
from incidents.service import alerts_of, locked, log_change, record

# Called after a move to "triaged" (the composition root notifies the entities then).
OnTriaged = Callable[[Session, IncidentRow, str], None]


def _sight(session: Session, incident_id: int, kind: str) -> None:
    for a in alerts_of(session, incident_id):
        sightings.enqueue(session, a.id, a.doc, kind)


def allowed(status: str) -> list[str]:
    return list(taxonomy.vocab()["transitions"].get(status, []))


def transition(
    session: Session,
    incident_id: int,
    version: int,
    to: str,
    actor: str,
    resolution: str | None = None,
    comment: str = "",
    on_triaged: OnTriaged | None = None,
) -> IncidentRow:
    v = taxonomy.vocab()
    if to not in v["states"]:
        raise IncidentError("incident.state_invalid", state=to, allowed=", ".join(v["states"]))
    inc = locked(session, incident_id, version)
    if inc.merged_into is not None:
        raise Conflict("incident.merged", incident_id=inc.id, target=inc.merged_into)
    options = allowed(inc.status)
    if to not in options:
        raise Conflict(
            "incident.transition",
            current=inc.status,
            to=to,
            allowed=", ".join(options) or "none",
        )
    if to == "closed":
        if resolution not in v["resolutions"]:
            raise IncidentError("incident.resolution_needed", allowed=", ".join(v["resolutions"]))
        early = inc.status in ("new", "triaged")
        if early and resolution not in v["closing_without_work"]:
            allowed_now = ", ".join(v["closing_without_work"])
            raise IncidentError(
                "incident.resolution_early", current=inc.status, allowed=allowed_now
            )
    elif resolution is not None:
        raise IncidentError("incident.resolution_unexpected")
    now, previous = utcnow(), inc.status
    # What the analysts concluded goes back to the indicators' source, as for an alert
    # triaged alone: confirmed on first triage, false positive when closed as one.
    if inc.acknowledged_at is None and to == "triaged":
        _sight(session, inc.id, sightings.SIGHTING)
    if to == "closed" and resolution == "false_positive":
        _sight(session, inc.id, sightings.FALSE_POSITIVE)
    if previous in ("resolved", "closed") and to == "in_progress":  # reopen
        inc.resolution, inc.resolved_at, inc.closed_at = None, None, None
    inc.status = to
    # Each clock stops the first time the incident passes its point.
    if inc.acknowledged_at is None and to != "new":
        inc.acknowledged_at = now
    if inc.contained_at is None and to in ("contained", "resolved"):
        inc.contained_at = now
    if to in ("resolved", "closed") and inc.resolved_at is None:
        inc.resolved_at = now
    if to == "closed":
        inc.closed_at, inc.resolution = now, resolution
    inc.updated_at = now
    change = {"from": previous, "to": to, "resolution": resolution}
    record(session, inc, "status", actor, body=comment.strip(), data=change)
    log_change(session, actor, "status", inc.id, **change)
    if to == "triaged" and on_triaged is not None:
        # The notices triage sends by itself say so on the timeline (the analyst who
        # triaged did not press "notify").
        session.flush()
        mine = IncidentEntryRow.incident_id == inc.id
        before = session.scalar(select(func.max(IncidentEntryRow.id)).where(mine)) or 0
        on_triaged(session, inc, actor)
        session.flush()
        sent = select(IncidentEntryRow).where(
            mine, IncidentEntryRow.kind == "notification", IncidentEntryRow.id > before
        )
        for entry in session.execute(sent).scalars():
            entry.data = {**entry.data, "trigger": "triage"}
    return inc
