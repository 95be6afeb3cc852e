"""The console's dependencies and its page renderer, shared by the console routers.

A console page without a valid session answers with the login form (401/403, not
JSON); a form posted on a session must carry the session's CSRF token (403)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from api import websec
from api.deps import READERS, SAFE_METHODS, Auth, ServicesDep, SessionDep, authenticate
from api.errors import REFUSED, refusal
from api.i18n import translator
from core import sessions
from core.tokens import Principal, Role


class ConsoleAuthError(Exception):
    """A console page without a valid session: answered with the login form."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        principal: Principal | None = None,
    ) -> None:
        self.status, self.message, self.headers = status, message, headers
        # Signed in, but the page is for other roles: the reason on a page, not the login.
        self.principal = principal


def _console_auth(request: Request, services: ServicesDep) -> Auth:
    try:
        auth = authenticate(request, services)
    except HTTPException as exc:
        if exc.status_code == 429:
            raise ConsoleAuthError(429, "login.throttled", exc.headers) from None
        raise ConsoleAuthError(exc.status_code, "login.required") from None
    if auth.principal.role not in READERS:
        raise ConsoleAuthError(403, "login.forbidden")
    return auth


CSRF_REFUSED = "El formulario venció o no vino de esta consola: vuelva a cargar la página."


async def console_principal(
    request: Request, auth: Annotated[Auth, Depends(_console_auth)]
) -> Principal:
    """The console's caller; a form posted on a session must carry its CSRF token.

    (A bearer header cannot be forged by another site's form, so scripts that
    post with one need no CSRF token.)"""
    if request.method not in SAFE_METHODS and auth.session is not None:
        given = (await request.form()).get(websec.CSRF_FIELD)
        if not isinstance(given, str) or not sessions.csrf_matches(auth.session.csrf, given):
            raise HTTPException(403, CSRF_REFUSED)
    return auth.principal


ConsoleUser = Annotated[Principal, Depends(console_principal)]


def console_roles(*roles: Role, refusal: str = "") -> Callable[..., Principal]:
    """A console dependency that admits only these roles: for others the login form
    (403), or with `refusal` a page saying whom this page is for."""
    allowed = frozenset(roles)

    def check(principal: ConsoleUser) -> Principal:
        if principal.role not in allowed:
            if refusal:
                raise ConsoleAuthError(403, refusal, principal=principal)
            raise ConsoleAuthError(403, "login.forbidden")
        return principal

    return check


STAFF = (Role.ADMIN, Role.ANALYST, Role.AUDITOR)
ANALYSTS = (Role.ADMIN, Role.ANALYST)
StaffUser = Annotated[Principal, Depends(console_roles(*STAFF))]
AnalystUser = Annotated[Principal, Depends(console_roles(*ANALYSTS))]
EntityUser = Annotated[Principal, Depends(console_roles(Role.ENTITY))]
# The self-assessment's pages: another role reads that they are the entities'.
EntityPageUser = Annotated[
    Principal, Depends(console_roles(Role.ENTITY, refusal="console.entity_only"))
]


def templates(request: Request) -> Jinja2Templates:
    t: Jinja2Templates = request.app.state.templates
    return t


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("vigia_lang") or "es"
    return lang if lang in ("es", "en") else "es"


def page(request: Request, name: str, http_status: int = 200, **ctx: Any) -> HTMLResponse:
    """A console page. Its forms get the session's CSRF token (`csrf`); the login
    form, before any session, gets the signed double-submit one."""
    lang = _lang(request)
    auth = getattr(request.state, "vigia_auth", None)
    csrf, new_login_csrf = "", False
    if isinstance(auth, Auth) and auth.session is not None:
        csrf = auth.session.csrf
    elif name == "login.html":
        services = request.app.state.services
        csrf, new_login_csrf = websec.login_csrf(services.tokens, request)
    resp = templates(request).TemplateResponse(
        request,
        name,
        {"t": translator(lang), "lang": lang, "csrf": csrf, **ctx},
        status_code=http_status,
    )
    websec.set_cookie(resp, request, "vigia_lang", lang)
    if new_login_csrf:
        websec.set_cookie(resp, request, websec.LOGIN_CSRF_COOKIE, csrf)
    resp.headers["Cache-Control"] = "no-store"  # no console page from the cache after logout
    return resp


@dataclass(frozen=True)
class ConsolePage:
    """A console page's request, its transaction and the person reading it: what a
    console handler works with, and its pages drawn for that person."""

    request: Request
    session: Session
    principal: Principal

    def page(self, name: str, http_status: int = 200, **ctx: Any) -> HTMLResponse:
        return page(self.request, name, http_status, principal=self.principal, **ctx)


def console_page(*roles: Role) -> Callable[..., ConsolePage]:
    """A dependency giving a ConsolePage to these roles (to any console reader if none
    are named); others get the login form (403), as with console_roles."""
    admit = console_roles(*roles) if roles else None

    def dep(request: Request, session: SessionDep, who: ConsoleUser) -> ConsolePage:
        if admit is not None:
            admit(who)
        return ConsolePage(request, session, who)

    return dep


ReaderPage = Annotated[ConsolePage, Depends(console_page())]
StaffPage = Annotated[ConsolePage, Depends(console_page(*STAFF))]
AnalystPage = Annotated[ConsolePage, Depends(console_page(*ANALYSTS))]


def run_form(
    request: Request,
    session: Session,
    action: Callable[[], object],
    back: str,
    again: Callable[[str, int], Response],
) -> Response:
    """A console form's action: done, back to `back` (303); refused, the page `again`
    with the reason and the refusal's status (the transaction rolled back)."""
    try:
        action()
        session.flush()  # a stale version shows here, with the page, not after it
    except REFUSED as exc:
        session.rollback()
        status, reason = refusal(request, exc)
        return again(reason, status)
    return RedirectResponse(back, status_code=303)
