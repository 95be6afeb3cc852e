"""Acting on many alerts at once, as the console's queue does (issue 15): acknowledge,
dismiss with a reason, give to an analyst, promote into a new incident or add to an
existing one. All or nothing: one refusal (an alert worked in an incident, a closed
incident) refuses the whole choice, in one transaction. Every change is audited by
the service that makes it (incidents.triage, incidents.service) or here (assign)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from incidents import alert_queue, reshape, service, triage
from incidents.errors import Conflict, IncidentError, NotFound
from incidents.policy import Policy

ACTIONS = ("acknowledge", "dismiss", "assign", "promote", "attach")
MOST = 500  # alerts in one action (a page shows 50)


@dataclass(frozen=True)
class Done:
    action: str
    count: int
    incident_id: int | None = None


def _chosen(session: Session, ids: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(i for i in ids if i))
    if not unique:
        raise IncidentError("alert.none_chosen")
    if len(unique) > MOST:
        raise IncidentError("alert.too_many_chosen", most=MOST)
    found = {r.id for r in service.alerts_by_id(session, unique)}  # NotFound for a missing one
    return [i for i in unique if i in found]


def assign(session: Session, ids: Sequence[str], assignee: str, actor: str) -> int:
    """Give the alerts to an analyst ("" takes them back)."""
    assignee = assignee.strip()
    if assignee and assignee not in alert_queue.assignable(session):
        raise IncidentError("alert.assignee_unknown", assignee=assignee)
    n = 0
    for row in service.alerts_by_id(session, ids):
        new = assignee or None
        if row.assignee == new:
            continue
        previous, row.assignee, row.updated_at = row.assignee, new, utcnow()
        audit.append(session, actor, "alert.assign", "alert", row.id, {"from": previous, "to": new})
        n += 1
    return n


def attach(session: Session, ids: Sequence[str], incident_id: int, actor: str) -> int:
    """Add the alerts to an incident that is not closed (as the incident page would)."""
    inc = service.get(session, incident_id)
    if inc.status == "closed":
        raise Conflict("alert.incident_closed", incident_id=incident_id)
    reshape.link_by_hand(session, incident_id, inc.version, ids, actor)
    return len(ids)


def run(
    session: Session,
    policy: Policy,
    action: str,
    ids: Sequence[str],
    actor: str,
    reason: str = "",
    assignee: str = "",
    incident_id: int | None = None,
) -> Done:
    if action not in ACTIONS:
        raise IncidentError("alert.bulk_unknown", action=action, allowed=", ".join(ACTIONS))
    chosen = _chosen(session, ids)
    if action in ("acknowledge", "dismiss"):
        status = "acknowledged" if action == "acknowledge" else "dismissed"
        for alert_id in chosen:
            if triage.set_status(session, alert_id, status, reason or None, actor) is None:
                raise NotFound("alert.not_found", alert_id=alert_id)
        return Done(action, len(chosen))
    if action == "assign":
        return Done(action, assign(session, chosen, assignee, actor))
    if action == "promote":
        inc = service.open_incident(session, policy, actor, chosen)
        return Done(action, len(chosen), inc.id)
    if incident_id is None:
        raise IncidentError("alert.incident_needed")
    return Done(action, attach(session, chosen, incident_id, actor), incident_id)
