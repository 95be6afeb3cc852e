"""The web console: server-rendered pages, Spanish first.

The login form takes an API token once and opens a server-side session
(core.sessions): the browser holds only the session's random id, in an
HttpOnly, SameSite=Strict cookie (Secure over HTTPS). Every form, the login
form included, carries a CSRF token, and every console POST checks it (403).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Form, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import websec
from api.console_deps import ConsoleAuthError, ConsoleUser, StaffPage, page
from api.deps import READERS, ServicesDep, check_token
from api.sso_logout import logout_at_provider
from core import audit, sessions
from core.clock import utcnow
from correlator.fleet import list_sensors
from correlator.sources import all_sources

router = APIRouter(prefix="/console", include_in_schema=False)


def install(app: FastAPI) -> None:
    """Mount the console; its auth failures render the login form (401/403), not JSON."""
    app.include_router(router)

    @app.exception_handler(ConsoleAuthError)
    async def _auth_error(request: Request, exc: ConsoleAuthError) -> Response:
        if exc.principal is not None:  # signed in, on a page for other roles
            return page(
                request,
                "forbidden.html",
                http_status=exc.status,
                reason=exc.message,
                principal=exc.principal,
            )
        # The page asked for is kept across the login (a GET only; the path, not a URL).
        asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        after = safe_next(asked) if request.method == "GET" else ""
        resp = page(request, "login.html", http_status=exc.status, error=exc.message, next=after)
        resp.headers.update(exc.headers or {})
        return resp

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # A person in the console gets a page with the reason; API clients keep JSON.
        if request.url.path.startswith("/console/"):
            return page(request, "error.html", http_status=exc.status_code, reason=exc.detail)
        return await http_exception_handler(request, exc)


HOME = "/console/alertas"


def safe_next(target: str) -> str:
    """Where to go after the login: a path of this console only ("/console/…", no
    scheme, no host, no "//" or backslash that a browser would read as another
    site); "" for anything else, which lands on the alert queue."""
    if len(target) > 1000 or not target.startswith("/console/") or "\\" in target:
        return ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return ""
    if any(ord(c) < 0x20 or c in '<>"' for c in target) or parts.path.startswith(
        ("/console/login", "/console/logout")
    ):
        return ""
    return target


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: Annotated[str, Query(max_length=1000)] = "") -> HTMLResponse:
    return page(request, "login.html", error=None, next=safe_next(next))


@router.post("/login")
def login(
    request: Request,
    services: ServicesDep,
    token: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    after = safe_next(next)
    if not websec.login_csrf_ok(services.tokens, request, csrf):
        return page(request, "login.html", http_status=403, error="login.expired", next=after)
    try:
        principal = check_token(request, services, token.strip())
    except HTTPException as exc:
        if exc.status_code == 429:
            refused = page(
                request, "login.html", http_status=429, error="login.throttled", next=after
            )
            refused.headers.update(exc.headers or {})
            return refused
        return page(request, "login.html", http_status=401, error="login.invalid", next=after)
    if principal.role not in READERS:
        return page(request, "login.html", http_status=401, error="login.invalid", next=after)
    now = utcnow()
    settings = services.settings
    with services.db.transaction() as session:
        earlier = request.cookies.get(websec.SESSION_COOKIE)
        if earlier:  # logging in again (another token): the old session ends here
            sessions.revoke(session, earlier, now)
        sessions.purge(session, websec.lifetimes(settings), now)
        session_id = sessions.open_session(session, principal, now)
        audit.append(session, principal.actor, "console.login", "token", principal.token_id)
    resp = RedirectResponse(after or HOME, status_code=303)
    max_age = settings.console_session_hours * 3600
    websec.set_cookie(resp, request, websec.SESSION_COOKIE, session_id, max_age)
    resp.delete_cookie(websec.LOGIN_CSRF_COOKIE, path="/")
    return resp


@router.post("/logout")
def logout(request: Request, services: ServicesDep, principal: ConsoleUser) -> Response:
    """Ends the session on the server, not only in this browser; a session opened
    through single sign-on goes on to end the person's session at the provider."""
    session_id = request.cookies.get(websec.SESSION_COOKIE)
    resp: Response = RedirectResponse("/console/login", status_code=303)
    if session_id:
        with services.db.transaction() as session:
            sso = sessions.sso_of(session, session_id)
            sessions.revoke(session, session_id, utcnow())
            details = {"via": "oidc", "issuer": sso[0]} if sso else None
            audit.append(
                session, principal.actor, "console.logout", "token", principal.token_id, details
            )
        if sso:
            resp = logout_at_provider(request, services, sso)
    resp.delete_cookie(websec.SESSION_COOKIE, path="/")
    return resp


@router.get("/sensores", response_class=HTMLResponse)
def sensors_page(c: StaffPage) -> HTMLResponse:
    """The sensor fleet: last heartbeat and the counters an operator watches."""
    return c.page("sensors.html", sensors=list_sensors(c.session), now=utcnow())


@router.get("/fuentes", response_class=HTMLResponse)
def sources_page(c: StaffPage) -> HTMLResponse:
    """Indicator sources: each one's last run, ok or failing, and what it gave."""
    return c.page("sources.html", sources=all_sources(c.session))
