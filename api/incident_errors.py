"""The incident services' refusals as HTTP answers, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from api.deps import SessionDep
from incidents.errors import Conflict, IncidentError, NotFound
from incidents.models import IncidentRow
from incidents.service import entities_of, get
from incidents.views import Viewer
from vigia.core.tokens import Principal, Role


@contextmanager
def answers(session: Session) -> Iterator[None]:
    """404 / 409 / 422 with the service's reason; a concurrent writer's newer
    version (caught at flush by the version counter) is a 409 too."""
    try:
        yield
        session.flush()
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except IncidentError as exc:
        raise HTTPException(422, str(exc)) from None
    except StaleDataError:
        raise HTTPException(409, "the incident changed meanwhile; reload it") from None


def viewer(principal: Principal) -> Viewer:
    return Viewer(principal.entity_id if principal.role is Role.ENTITY else None)


def visible(session: SessionDep, principal: Principal, incident_id: int) -> IncidentRow:
    """The incident, if the caller may see it; an entity not named gets the same 404
    as for an incident that does not exist."""

    try:
        inc = get(session, incident_id)
    except NotFound:
        raise HTTPException(404, f"no incident {incident_id}") from None
    v = viewer(principal)
    if not v.staff and v.entity_id not in entities_of(session, incident_id):
        raise HTTPException(404, f"no incident {incident_id}")
    return inc
