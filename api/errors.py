"""The services' refusals as HTTP answers, mapped once for the whole application.

A service raises a coded error (core.errors.CodedError): one handler per
domain's base class answers it with the status its kind has in STATUS and the
message translated to the caller's language:  {"detail": message, "code": code,
"params": {...}}. An API caller names it with `?lang=` or Accept-Language and gets
English otherwise (as every other API message); the console (the same refusal is its
error page there) is Spanish unless `?lang=` or its language cookie say otherwise.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import i18n
from api.deps import SessionDep
from certification.errors import CertConflict, CertError, CertNotFound
from core.errors import CodedError
from incidents.errors import Conflict, IncidentError, NotFound

# A refusal's kind (its class, nearest first) → the HTTP status; 422 for the rest.
STATUS: dict[type[CodedError], int] = {
    NotFound: 404,
    Conflict: 409,
    IncidentError: 422,
    CertNotFound: 404,
    CertConflict: 409,
    CertError: 422,
}
BASES = (IncidentError, CertError)


def status_of(exc: CodedError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 422


def request_lang(request: Request) -> str:
    asked = request.query_params.get("lang")
    if request.url.path.startswith("/console/"):
        return i18n.pick(asked or request.cookies.get("vigia_lang"))
    return i18n.pick(asked, request.headers.get("accept-language", ""), default="en")


# Parameters that are codes of a vocabulary, per refusal: shown to a person in the
# catalogue's words (a list "a, b" item by item). English keeps the codes, which
# are what an API client sends back.
PARAM_LABELS: dict[str, dict[str, str]] = {
    "incident.transition": {"current": "inc.state", "to": "inc.state", "allowed": "inc.state"},
    "incident.resolution_early": {"current": "inc.state", "allowed": "resolution"},
    "incident.resolution_needed": {"allowed": "resolution"},
    "incident.state_invalid": {"allowed": "inc.state"},
    "alert.status_invalid": {"allowed": "status"},
    "alert.dismiss_reason": {"allowed": "dismiss"},
    "assessment.locked": {"status": "cert.a"},
    "assessment.not_reviewable": {"status": "cert.a"},
    "assessment.not_returnable": {"status": "cert.a"},
    "assessment.not_decidable": {"status": "cert.a"},
    "answer.invalid": {"allowed": "cert.ans"},
    "entity.level_invalid": {"allowed": "level"},
}


def _label(lang: str, family: str, value: object) -> object:
    def one(code: str) -> str:
        key = f"{family}.{code}"
        found = i18n.translations(lang).gettext(key)
        return code if found == key else found

    return ", ".join(one(v) for v in value.split(", ")) if isinstance(value, str) else value


def message(exc: CodedError, lang: str) -> str:
    params = dict(exc.params)
    if lang != "en":
        for name, family in PARAM_LABELS.get(exc.code, {}).items():
            if name in params:
                params[name] = _label(lang, family, params[name])
    return i18n.text(lang, exc.code, params)


# What a console form may meet: its own HTTP refusals, the services' and a stale write.
REFUSED = (HTTPException, CodedError, StaleDataError)


def refusal(request: Request, exc: Exception) -> tuple[int, str]:
    """The status and the reason, in the caller's language, to show a person."""
    if isinstance(exc, StaleDataError):
        exc = Conflict("incident.changed_meanwhile")
    if isinstance(exc, CodedError):
        return status_of(exc), message(exc, request_lang(request))
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    raise exc


def _plain(value: object) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def answer(request: Request, exc: CodedError) -> JSONResponse:
    return JSONResponse(
        {
            "detail": message(exc, request_lang(request)),
            "code": exc.code,
            "params": {k: _plain(v) for k, v in exc.params.items()},
        },
        status_code=status_of(exc),
    )


def install(app: FastAPI) -> None:
    async def refused(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, CodedError):  # only the classes registered below come here
            raise exc
        if request.url.path.startswith("/console/"):
            # The console's own page for an HTTP error, with the translated reason.
            page = app.exception_handlers[StarletteHTTPException]
            http = HTTPException(status_of(exc), message(exc, request_lang(request)))
            result = page(request, http)
            return await result if inspect.isawaitable(result) else result
        return answer(request, exc)

    async def stale(request: Request, exc: Exception) -> Response:
        # A concurrent writer's newer version, caught by the version counter at flush.
        return await refused(request, Conflict("incident.changed_meanwhile"))

    for base in BASES:
        app.add_exception_handler(base, refused)
    app.add_exception_handler(StaleDataError, stale)


def _flush(session: SessionDep) -> Iterator[None]:
    """A route's writes reach the database before its answer is made, so a concurrent
    writer's newer version (the version counter, at flush) is a 409, not a lost write
    after a 200 (the session itself commits only once the answer is sent)."""
    yield
    try:
        session.flush()
    except StaleDataError:
        raise Conflict("incident.changed_meanwhile") from None


Flushed = Depends(_flush, scope="function")
