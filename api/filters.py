"""Query filters shared by the list routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from api.access import entity_scope
from api.deps import Reader


def _entity_filter(
    principal: Reader, entity: Annotated[str | None, Query(max_length=64)] = None
) -> str | None:
    """The entity a list is limited to: an entity token's own (another: 403), the one
    CERT staff asked for, or None for all."""
    return entity_scope(principal, entity)


EntityFilter = Annotated[str | None, Depends(_entity_filter)]
StatusFilter = Annotated[str | None, Query(max_length=20)]
