"""The certification services' refusals as HTTP answers, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException

from certification.catalogue import CatalogueError
from certification.errors import CertConflict, CertError, CertNotFound
from certification.registry import EntityError
from vigia.core.tokens import Principal, Role


@contextmanager
def answers() -> Iterator[None]:
    try:
        yield
    except CertNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except CertConflict as exc:
        raise HTTPException(409, str(exc)) from None
    except (CertError, CatalogueError, EntityError) as exc:
        raise HTTPException(422, str(exc)) from None


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
