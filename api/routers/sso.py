"""The console's single sign-on: OpenID Connect authorisation code flow with PKCE.

`/console/sso/entrar` sends the browser to the provider with a fresh state,
nonce and PKCE verifier, kept meanwhile in a short-lived cookie signed with the
installation's key (SameSite=Lax: the provider's redirect back is a cross-site
navigation). `/console/sso/retorno` checks the state against that cookie,
trades the code (with the verifier) for tokens, checks the ID token (signature
with the provider's keys, issuer, audience, expiry, nonce: api.oidc), asks the
provider's userinfo endpoint once when the ID token lacks the claims the mapping
reads (groups, the entity), maps the claims to a role and an entity
(api.oidc_claims) and opens the console's usual server-side session
(core.sessions) for that identity. Login and logout are audited; the logout of
such a session goes on to the provider's end-session endpoint.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import websec
from api.console_deps import page
from api.deps import ServicesDep
from api.oidc import ProviderDown, TokenRefused
from api.oidc_auth import providers_of
from api.oidc_claims import Unmapped, identity, missing
from api.oidc_identities import federated_principal
from api.sso_logout import callback_url
from certification.registry import Registry
from core import audit, sessions
from core.clock import utcnow
from core.tokens import TokenService

router = APIRouter(prefix="/console/sso", include_in_schema=False)

FLOW_COOKIE = "vigia_sso"
FLOW_PATH = "/console/sso"
FLOW_SECONDS = 600  # the person has ten minutes at the provider
ACTOR = "system:sso"


def _sign(tokens: TokenService, body: str) -> str:
    return tokens.digest(f"sso-flow:{body}")[:43]


def _flow_cookie(tokens: TokenService, issuer: str, state: str, nonce: str, verifier: str) -> str:
    data = {"i": issuer, "s": state, "n": nonce, "v": verifier, "t": int(time.time())}
    body = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{body}.{_sign(tokens, body)}"


def _read_flow(tokens: TokenService, cookie: str) -> dict[str, str] | None:
    body, _, sig = cookie.partition(".")
    if not body or not sig or not hmac.compare_digest(sig, _sign(tokens, body)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    if not isinstance(data, dict) or time.time() - float(data.get("t", 0)) > FLOW_SECONDS:
        return None
    if not all(isinstance(data.get(k), str) for k in ("i", "s", "n", "v")):
        return None
    return data


def _refused(request: Request, status: int, key: str, **params: str) -> Response:
    resp = page(request, "login.html", http_status=status, error=key, error_params=params)
    resp.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return resp


@router.get("/entrar")
def start(
    request: Request, services: ServicesDep, p: Annotated[int, Query(ge=0, le=99)] = 0
) -> Response:
    """The login button of provider `p` (its place in the configured list)."""
    providers = providers_of(request)
    if providers is None:
        return _refused(request, 404, "sso.off")
    provider = providers.at(p)
    if provider is None:
        return _refused(request, 404, "sso.no_such_provider")
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)  # 64 characters: RFC 7636 asks 43 to 128
    redirect_uri = callback_url(request, services.settings.public_url)
    try:
        url = provider.authorization_url(redirect_uri, state, nonce, verifier)
    except ProviderDown:
        return _refused(request, 503, "sso.down", provider=provider.name)
    resp = RedirectResponse(url, status_code=302)
    resp.set_cookie(
        FLOW_COOKIE,
        _flow_cookie(services.tokens, provider.issuer, state, nonce, verifier),
        max_age=FLOW_SECONDS,
        httponly=True,
        samesite="lax",
        secure=websec.is_https(request),
        path=FLOW_PATH,
    )
    return resp


@router.get("/retorno")
def callback(
    request: Request,
    services: ServicesDep,
    code: Annotated[str, Query(max_length=2000)] = "",
    state: Annotated[str, Query(max_length=200)] = "",
    error: Annotated[str, Query(max_length=200)] = "",
    iss: Annotated[str, Query(max_length=300)] = "",
) -> Response:
    providers = providers_of(request)
    if providers is None:
        return _refused(request, 404, "sso.off")
    flow = _read_flow(services.tokens, request.cookies.get(FLOW_COOKIE, ""))
    if flow is None or not state or not hmac.compare_digest(flow["s"], state):
        return _refused(request, 400, "sso.expired")
    # The provider this login began with (the signed cookie says), no other.
    provider = providers.by_issuer(flow["i"])
    if provider is None:
        return _refused(request, 400, "sso.expired")
    if iss and iss.rstrip("/") != provider.issuer:  # RFC 9207: an answer from another one
        return _refused(request, 401, "sso.refused", provider=provider.name)
    if error or not code:
        return _refused(request, 401, "sso.denied", provider=provider.name)
    redirect_uri = callback_url(request, services.settings.public_url)
    from_userinfo = False
    try:
        tokens = provider.exchange(code, redirect_uri, flow["v"])
        access_token = str(tokens.get("access_token", ""))
        claims = provider.verify_id_token(str(tokens["id_token"]), access_token, flow["n"])
        if missing(claims, provider.config):
            # Groups (or the entity) not in the ID token: asked once, now, of the
            # userinfo endpoint; the ID token's own claims win where both have one.
            more = provider.userinfo(access_token, str(claims.get("sub", "")))
            claims, from_userinfo = {**more, **claims}, bool(more)
    except ProviderDown:
        return _refused(request, 503, "sso.down", provider=provider.name)
    except TokenRefused as exc:
        with services.db.transaction() as session:
            audit.append(session, ACTOR, "console.login_refused", "sso", "", {"reason": str(exc)})
        return _refused(request, 401, "sso.refused", provider=provider.name)
    now = utcnow()
    with services.db.transaction() as session:
        try:
            known = lambda e: Registry.get(session, e) is not None  # noqa: E731
            who = identity(claims, provider, known)
        except Unmapped as exc:
            subject = str(claims.get("sub", ""))
            audit.append(
                session, ACTOR, "console.login_refused", "sso", subject, {"reason": exc.reason}
            )
            return _refused(request, 403, exc.key, **exc.params)
        principal = federated_principal(session, who, now)
        earlier = request.cookies.get(websec.SESSION_COOKIE)
        if earlier:  # logging in again: the old session ends here
            sessions.revoke(session, earlier, now)
        sessions.purge(session, websec.lifetimes(services.settings), now)
        session_id = sessions.open_session(
            session, principal, now, sso=(provider.issuer, str(tokens["id_token"]))
        )
        details = {"via": "oidc", "issuer": provider.issuer, "subject": who.subject}
        details["role"] = who.role.value
        details["entity"] = who.entity_id or ""
        if from_userinfo:
            details["claims_from"] = "userinfo"
        audit.append(
            session, principal.actor, "console.login", "token", principal.token_id, details
        )
    # A page of ours, not a redirect: the session cookie is SameSite=Strict, and a
    # navigation that began at the provider (another site) would not carry it.
    resp: HTMLResponse = page(request, "sso_done.html", principal=principal)
    max_age = services.settings.console_session_hours * 3600
    websec.set_cookie(resp, request, websec.SESSION_COOKIE, session_id, max_age)
    resp.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    resp.delete_cookie(websec.LOGIN_CSRF_COOKIE, path="/")
    return resp
