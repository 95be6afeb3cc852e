"""`GET /api/v1/entities/{id}/exposure`: the entity's report findings per week and
kind (incidents/reports/exposure.py); the CERT's staff or the entity itself."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from api.access import own_entity
from api.deps import Reader, SessionDep
from certification.registry import Registry
from core.clock import utcnow
from incidents.reports import exposure

router = APIRouter(tags=["entities"])


class ExposureOut(BaseModel):
    entity_id: str
    weeks: list[str]
    kinds: dict[str, list[int]]
    high: list[int]


@router.get("/api/v1/entities/{entity_id}/exposure", response_model=ExposureOut)
def entity_exposure(entity_id: str, session: SessionDep, principal: Reader) -> ExposureOut:
    """Findings per ISO week (the last twelve, oldest first) by report kind, and the
    high or critical ones."""
    own = own_entity(principal)
    if (own and own != entity_id) or Registry.get(session, entity_id) is None:
        raise HTTPException(404, f"no entity {entity_id}")
    return ExposureOut(entity_id=entity_id, **exposure.weekly(session, entity_id, utcnow()))
