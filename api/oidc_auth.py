"""A bearer JWT from the single sign-on provider, checked for the API.

Vigía's own tokens (`vga_…`) keep their path (api.deps.check_token): sensors and
automation are untouched. A JWT is checked against the provider its `iss` names,
among those configured (api.oidc), and its claims mapped by that provider's
mapping (api.oidc_claims); nothing is written for a good one. A bad
one counts against the caller's address in the brute-force throttle (not against
a token prefix: every JWT starts alike), a locked-out address is refused first.
"""

from __future__ import annotations

from fastapi import HTTPException, Request

from api import websec
from api.oidc import ProviderDown, Providers, TokenRefused
from api.oidc_claims import Unmapped, identity
from certification.registry import Registry
from core import throttle
from core.clock import utcnow
from core.db import Database
from core.settings import Settings
from core.tokens import Principal


def providers_of(request: Request) -> Providers | None:
    found = getattr(request.app.state, "oidc", None)
    return found if isinstance(found, Providers) else None


def check_jwt(
    request: Request, db: Database, settings: Settings, providers: Providers, token: str
) -> Principal:
    now = utcnow()
    keys = throttle.keys(websec.client_address(request), None)
    with db.transaction(write=False) as session:
        wait = throttle.retry_after(session, keys, now)
    if wait:
        raise HTTPException(
            429, "too many failed attempts; retry later", headers={"Retry-After": str(wait)}
        )
    try:
        provider = providers.for_jwt(token)  # by its `iss`: never an unknown issuer's keys
        claims = provider.verify_access_token(token)
    except ProviderDown:
        raise HTTPException(
            503, "the identity provider does not answer; retry later", headers={"Retry-After": "30"}
        ) from None
    except TokenRefused as exc:
        throttle.fail(db, keys, websec.limits(settings), now)
        raise HTTPException(
            401,
            f"bearer JWT refused: {exc}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None

    def known(entity_id: str) -> bool:  # asked for an entity role only
        with db.transaction(write=False) as session:
            return Registry.get(session, entity_id) is not None

    try:
        who = identity(claims, provider, known)
    except Unmapped as exc:
        raise HTTPException(403, exc.reason) from None
    return who.principal()
