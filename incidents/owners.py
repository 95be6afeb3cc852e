"""Who works an incident: its owner, one of the CERT's analysts (an admin or analyst
token that is not revoked), named by actor ("analyst:ana")."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.tokens import Role, TokenRow
from incidents.errors import IncidentError
from incidents.models import IncidentRow
from incidents.service import locked, log_change, record

WORKERS = (Role.ADMIN.value, Role.ANALYST.value)


@dataclass(frozen=True)
class Analyst:
    actor: str  # "analyst:ana", as the audit and the timeline name people
    name: str
    role: str


def analysts(session: Session) -> list[Analyst]:
    """The people an incident can be given to, by name (one entry per actor)."""
    q = select(TokenRow.role, TokenRow.name).where(
        TokenRow.role.in_(WORKERS), TokenRow.revoked_at.is_(None)
    )
    found = {
        f"{role}:{name}": Analyst(f"{role}:{name}", name, role) for role, name in session.execute(q)
    }
    return sorted(found.values(), key=lambda a: (a.name.lower(), a.role))


def assign(session: Session, incident_id: int, version: int, owner: str, actor: str) -> IncidentRow:
    """Give the incident to an analyst ("" takes it back); on its timeline and audited."""
    inc = locked(session, incident_id, version)
    owner = owner.strip()
    if owner and owner not in {a.actor for a in analysts(session)}:
        raise IncidentError("incident.owner_unknown", owner=owner)
    new = owner or None
    if new == inc.owner:
        return inc
    previous, inc.owner, inc.updated_at = inc.owner, new, utcnow()
    record(session, inc, "owner", actor, data={"from": previous, "to": new})
    log_change(session, actor, "owner", inc.id, previous=previous, owner=new)
    return inc
