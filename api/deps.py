"""Annotated dependencies: the services, a session, and the authorised caller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from vigia.core.tokens import Principal, Role
from vigia.wiring import Services

COOKIE = "vigia_token"


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(request: Request, services: ServicesDep) -> Iterator[Session]:
    # Reads never take SQLite's write lock, so they do not queue behind ingest.
    write = request.method not in ("GET", "HEAD")
    with services.db.transaction(write=write) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.cookies.get(COOKIE)


def current_principal(request: Request, services: ServicesDep) -> Principal:
    token = _token(request)
    if not token:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    with services.db.transaction(write=False) as session:
        principal = services.tokens.authenticate(session, token)
    if principal is None:
        raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return principal


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency that admits only these roles (403 for the others)."""
    allowed = frozenset(roles)

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(403, f"role {principal.role.value} may not do this")
        return principal

    return check


READERS = (Role.ADMIN, Role.ANALYST, Role.AUDITOR, Role.ENTITY)
Reader = Annotated[Principal, Depends(require(*READERS))]
Analyst = Annotated[Principal, Depends(require(Role.ADMIN, Role.ANALYST))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Sensor = Annotated[Principal, Depends(require(Role.SENSOR, Role.ADMIN))]
Auditor = Annotated[Principal, Depends(require(Role.ADMIN, Role.AUDITOR))]
Staff = Annotated[Principal, Depends(require(Role.ADMIN, Role.ANALYST, Role.AUDITOR))]
Entity = Annotated[Principal, Depends(require(Role.ENTITY))]
