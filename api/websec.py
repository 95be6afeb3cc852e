"""What the browser-facing side needs to be safe: cookies, the login form's CSRF
token, the client's address, and the security headers on every response."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.sessions import Lifetimes
from core.settings import Settings
from core.throttle import Limits
from core.tokens import TokenService

SESSION_COOKIE = "vigia_session"
LOGIN_CSRF_COOKIE = "vigia_login_csrf"
CSRF_FIELD = "csrf"

# No inline script or style anywhere: scripts are files under /static and data
# reaches them as JSON in <script type="application/json"> (never executed).
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",  # frame-ancestors for browsers that predate CSP 2
    "referrer-policy": "same-origin",
}


class HttpMiddleware:
    """Pure ASGI middleware acting on HTTP requests; the rest (lifespan) passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class SecurityHeaders(HttpMiddleware):
    """Adds the headers above to every HTTP response (pages, JSON, static files)."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def is_https(request: Request) -> bool:
    # Behind a proxy the scheme is the proxy's X-Forwarded-Proto only when
    # VIGIA_TRUSTED_PROXIES names it (ProxyHeadersMiddleware, installed in create_app).
    return request.url.scheme == "https"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/",
    )


def lifetimes(settings: Settings) -> Lifetimes:
    return Lifetimes(
        idle=timedelta(minutes=settings.console_idle_minutes),
        absolute=timedelta(hours=settings.console_session_hours),
    )


def limits(settings: Settings) -> Limits:
    return Limits(
        failures=settings.auth_fail_limit,
        window=timedelta(seconds=settings.auth_fail_window_s),
        lockout=timedelta(seconds=settings.auth_lockout_s),
    )


# -- the login form's CSRF token: a signed double-submit cookie ---------------
# Before login there is no session to tie a token to, so the form carries the
# same random value as a cookie, signed with the installation's key (a cookie
# planted from a sibling domain cannot be signed).


def _signature(tokens: TokenService, nonce: str) -> str:
    return tokens.digest(f"login-csrf:{nonce}")[:32]


def login_csrf(tokens: TokenService, request: Request) -> tuple[str, bool]:
    """The login form's token: the browser's if it is still good, else a new one
    (True: set it as the cookie)."""
    held = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if _signed(tokens, held):
        return held, False
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_signature(tokens, nonce)}", True


def _signed(tokens: TokenService, value: str) -> bool:
    nonce, _, sig = value.partition(".")
    return bool(nonce and sig) and hmac.compare_digest(sig, _signature(tokens, nonce))


def login_csrf_ok(tokens: TokenService, request: Request, given: str) -> bool:
    held = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return (
        bool(given) and hmac.compare_digest(held.encode(), given.encode()) and _signed(tokens, held)
    )
