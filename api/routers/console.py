"""The web console: server-rendered pages, Spanish first.

The browser carries the token in an HttpOnly, SameSite=Strict cookie set by
the login form; every page but the login form itself checks it like the API.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import COOKIE, READERS, ServicesDep, SessionDep, current_principal
from api.i18n import translator
from api.routers.alerts import visibility
from correlator.fleet import list_sensors
from correlator.sources import all_sources
from correlator.store import AlertFilter, CursorError
from vigia.core.clock import utcnow
from vigia.core.tokens import Principal, Role

router = APIRouter(prefix="/console", include_in_schema=False)


def templates(request: Request) -> Jinja2Templates:
    t: Jinja2Templates = request.app.state.templates
    return t


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("vigia_lang") or "es"
    return lang if lang in ("es", "en") else "es"


class ConsoleAuthError(Exception):
    """A console page without a valid session: answered with the login form."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


def console_principal(request: Request, services: ServicesDep) -> Principal:
    try:
        principal = current_principal(request, services)
    except HTTPException as exc:
        raise ConsoleAuthError(exc.status_code, "login.required") from None
    if principal.role not in READERS:
        raise ConsoleAuthError(403, "login.forbidden")
    return principal


def install(app: FastAPI) -> None:
    """Mount the console; its auth failures render the login form (401/403), not JSON."""
    app.include_router(router)

    @app.exception_handler(ConsoleAuthError)
    async def _auth_error(request: Request, exc: ConsoleAuthError) -> Response:
        return page(request, "login.html", http_status=exc.status, error=exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # A person in the console gets a page with the reason; API clients keep JSON.
        if request.url.path.startswith("/console/"):
            return page(request, "error.html", http_status=exc.status_code, reason=exc.detail)
        return await http_exception_handler(request, exc)


ConsoleUser = Annotated[Principal, Depends(console_principal)]


def page(request: Request, name: str, http_status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = _lang(request)
    resp = templates(request).TemplateResponse(
        request, name, {"t": translator(lang), "lang": lang, **ctx}, status_code=http_status
    )
    resp.set_cookie("vigia_lang", lang, samesite="strict", httponly=True)
    return resp


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return page(request, "login.html", error=None)


@router.post("/login")
def login(
    request: Request, services: ServicesDep, token: Annotated[str, Form(max_length=200)]
) -> Response:
    with services.db.transaction(write=False) as session:
        principal = services.tokens.authenticate(session, token.strip())
    if principal is None or principal.role not in READERS:
        return page(request, "login.html", http_status=401, error="login.invalid")
    resp = RedirectResponse("/console/alertas", status_code=303)
    resp.set_cookie(
        COOKIE,
        token.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=12 * 3600,
    )
    return resp


@router.post("/logout")
def logout(principal: ConsoleUser) -> Response:
    resp = RedirectResponse("/console/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


@router.get("/alertas", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    principal: ConsoleUser,
    status: Annotated[
        str | None, Query(pattern="^(new|acknowledged|in_incident|dismissed)?$")
    ] = None,
    indicator_type: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    entity_id, hidden = visibility(principal, None)
    f = AlertFilter(
        indicator_type=indicator_type or None,
        entity_id=entity_id,
        status=status or None,
        hide_tlp=hidden,
    )
    try:
        rows, nxt = services.search_alerts(session, f, 50, cursor)
    except CursorError:
        raise HTTPException(422, "cursor inválido") from None
    return page(
        request,
        "alerts.html",
        alerts=[r.to_ecs() for r in rows],
        next_cursor=nxt,
        principal=principal,
        status_filter=status or "",
        indicator_type=indicator_type or "",
    )


def _staff(principal: ConsoleUser) -> Principal:
    if principal.role not in (Role.ADMIN, Role.ANALYST, Role.AUDITOR):
        raise ConsoleAuthError(403, "login.forbidden")
    return principal


StaffUser = Annotated[Principal, Depends(_staff)]


@router.get("/sensores", response_class=HTMLResponse)
def sensors_page(request: Request, session: SessionDep, principal: StaffUser) -> HTMLResponse:
    """The sensor fleet: last heartbeat and the counters an operator watches."""
    return page(
        request, "sensors.html", sensors=list_sensors(session), principal=principal, now=utcnow()
    )


@router.get("/fuentes", response_class=HTMLResponse)
def sources_page(request: Request, session: SessionDep, principal: StaffUser) -> HTMLResponse:
    """Indicator sources: each one's last run, ok or failing, and what it gave."""
    return page(request, "sources.html", sources=all_sources(session), principal=principal)
