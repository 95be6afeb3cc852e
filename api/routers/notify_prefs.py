"""How an entity hears of incidents: at once or in a daily digest, per RSIT class
(incidents/prefs.py). Read by the CERT's staff and the entity itself; set by an
admin or the entity itself, audited."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.access import own_entity
from api.deps import Reader, SessionDep
from api.schemas.notify_prefs import NotifyPrefsIn, NotifyPrefsOut
from certification.registry import Registry
from core.tokens import Role
from incidents import prefs

router = APIRouter(tags=["entities"])
PATH = "/api/v1/entities/{entity_id}/notification-preferences"


def _visible(session: SessionDep, principal: Reader, entity_id: str) -> None:
    own = own_entity(principal)
    if (own and own != entity_id) or Registry.get(session, entity_id) is None:
        raise HTTPException(404, f"no entity {entity_id}")


@router.get(PATH, response_model=NotifyPrefsOut)
def get_prefs(entity_id: str, session: SessionDep, principal: Reader) -> NotifyPrefsOut:
    _visible(session, principal, entity_id)
    return NotifyPrefsOut(entity_id=entity_id, **prefs.get(session, entity_id))


@router.put(PATH, response_model=NotifyPrefsOut)
def put_prefs(
    entity_id: str, body: NotifyPrefsIn, session: SessionDep, principal: Reader
) -> NotifyPrefsOut:
    """Replaces them all: `default` for every class not in `classes`."""
    _visible(session, principal, entity_id)
    if principal.role is not Role.ADMIN and own_entity(principal) != entity_id:
        raise HTTPException(403, "only an admin or the entity itself sets its preferences")
    held = prefs.put(session, entity_id, body.default, dict(body.classes), principal.actor)
    return NotifyPrefsOut(entity_id=entity_id, **held)
