"""Who may see what, beside the dependencies: an entity token sees its own entity's
records only; CERT staff see all."""

from __future__ import annotations

from fastapi import HTTPException

from api.deps import SessionDep
from core.tokens import Principal, Role
from incidents.errors import NotFound
from incidents.models import IncidentRow
from incidents.service import entities_of, get
from incidents.views import Viewer


def own_entity(principal: Principal) -> str | None:
    """The entity an entity token is bound to; None for CERT staff (who see all)."""
    return principal.entity_id if principal.role is Role.ENTITY else None


def entity_scope(principal: Principal, entity: str | None) -> str | None:
    """The entity a list is limited to: an entity token's own (asking for another is
    403), or the one CERT staff asked for, or None for all."""
    own = own_entity(principal)
    if own and entity not in (None, own):
        raise HTTPException(403, "an entity token sees only its own entity")
    return own or entity


def viewer(principal: Principal) -> Viewer:
    return Viewer(own_entity(principal))


def visible(session: SessionDep, principal: Principal, incident_id: int) -> IncidentRow:
    """The incident, if the caller may see it; an entity not named gets the same 404
    as for an incident that does not exist."""
    inc = get(session, incident_id)
    v = viewer(principal)
    if not v.staff and v.entity_id not in entities_of(session, incident_id):
        raise NotFound("incident.not_found", incident_id=incident_id)
    return inc
