"""Annotated dependencies: the services, a session, and the authorised caller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from api import oidc_auth, websec
from api.oidc import looks_like_jwt
from api.services import Services
from core import sessions, throttle
from core.clock import utcnow
from core.sessions import ConsoleSession
from core.tokens import Principal, Role
from correlator.rows import AlertRow
from correlator.store import AlertStore

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(request: Request, services: ServicesDep) -> Iterator[Session]:
    # Reads never take SQLite's write lock, so they do not queue behind ingest.
    write = request.method not in ("GET", "HEAD")
    with services.db.transaction(write=write) as session:
        yield session


# scope="function": the transaction ends (commits, or its failure becomes the
# answer) before the answer is sent, so a client that reads right after a 201 or a
# console form's 303 sees what it made (tests/test_commit_order.py).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@dataclass(frozen=True)
class Caller:
    """What a handler that changes things works with: its transaction, the caller
    (already admitted by a role dependency) and the services."""

    session: Session
    principal: Principal
    services: Services

    @property
    def actor(self) -> str:
        return self.principal.actor


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return None


@dataclass(frozen=True)
class Auth:
    """Who is calling, and the console session when a session cookie said so
    (the console's forms then need that session's CSRF token)."""

    principal: Principal
    session: ConsoleSession | None = None


def authenticate(request: Request, services: Services) -> Auth:
    """The one authentication check: a bearer token, or a console session cookie.

    Throttled per client address and token prefix (429). The outcome is kept on
    the request, so a middleware and the route's dependency share one check
    (and one counted failure)."""
    held = getattr(request.state, "vigia_auth", None)
    if isinstance(held, Auth):
        return held
    if isinstance(held, HTTPException):
        raise held
    try:
        auth = _authenticate(request, services)
    except HTTPException as exc:
        request.state.vigia_auth = exc
        raise
    request.state.vigia_auth = auth
    return auth


def _authenticate(request: Request, services: Services) -> Auth:
    token = _bearer(request)
    if token:
        providers = oidc_auth.providers_of(request)
        if providers is not None and looks_like_jwt(token):  # single sign-on (api/oidc.py)
            db, settings = services.db, services.settings
            return Auth(oidc_auth.check_jwt(request, db, settings, providers, token))
        return Auth(check_token(request, services, token))
    session_id = request.cookies.get(websec.SESSION_COOKIE)
    # A session cookie writes only through the console (whose forms carry the
    # CSRF token); the API's writes need the bearer header.
    if session_id and (request.method in SAFE_METHODS or request.url.path.startswith("/console/")):
        found = _console_session(services, session_id)
        if found is not None:
            return Auth(found.principal, found)
    raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})


def check_token(request: Request, services: Services, token: str) -> Principal:
    """A token's principal; a failure counts against the caller's address and the
    token's prefix, and a locked-out one is refused before any check (429)."""
    now = utcnow()
    keys = throttle.keys(websec.client_address(request), token)
    with services.db.transaction(write=False) as session:
        wait = throttle.retry_after(session, keys, now)
        principal = None if wait else services.tokens.authenticate(session, token)
    if wait:
        raise HTTPException(
            429, "too many failed attempts; retry later", headers={"Retry-After": str(wait)}
        )
    if principal is None:
        throttle.fail(services.db, keys, websec.limits(services.settings), now)
        raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return principal


def _console_session(services: Services, session_id: str) -> ConsoleSession | None:
    now = utcnow()
    lifetimes = websec.lifetimes(services.settings)
    with services.db.transaction(write=False) as session:
        found = sessions.lookup(session, session_id, lifetimes, now)
    if found is not None and found.needs_touch:
        with services.db.transaction() as session:
            sessions.touch(session, found.digest, now)
    return found


def current_principal(request: Request, services: ServicesDep) -> Principal:
    return authenticate(request, services).principal


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


def _analyst_call(session: SessionDep, principal: Analyst, services: ServicesDep) -> Caller:
    return Caller(session, principal, services)


def _entity_call(session: SessionDep, principal: Entity, services: ServicesDep) -> Caller:
    return Caller(session, principal, services)


AnalystCall = Annotated[Caller, Depends(_analyst_call)]
EntityCall = Annotated[Caller, Depends(_entity_call)]


def visibility(principal: Principal, entity: str | None) -> tuple[str | None, tuple[str, ...]]:
    """The alerts a caller sees: an entity only its own, never TLP:RED; the CERT all.
    (An entity asking for another entity: 403.)"""
    if principal.role is Role.ENTITY:
        if entity not in (None, principal.entity_id):
            raise HTTPException(403, "an entity token sees only its own entity")
        return principal.entity_id, ("red",)
    return entity, ()


def visible_alert(session: Session, principal: Principal, alert_id: str) -> AlertRow | None:
    """The alert if this caller may see it (visibility above); None for one it may not
    see as for one that does not exist, so both get the same 404."""
    row = AlertStore.get(session, alert_id)
    entity_id, hidden = visibility(principal, None)
    if row is None or (entity_id and row.entity_id != entity_id) or row.tlp in hidden:
        return None
    return row
