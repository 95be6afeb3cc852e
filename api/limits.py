"""Request bodies: refused unread when the caller has no valid credential, and capped
per route kind while they stream in (413), never buffered past the cap.

FastAPI parses a route's body before its dependencies run, so the credential check
cannot be a dependency alone: this middleware asks `api.deps.authenticate` (the one
check, which keeps its outcome on the request for the route's own dependency) before
the application sees the first byte of a body, and counts the bytes as the server
hands them over.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from api.console_deps import page
from api.deps import SAFE_METHODS, authenticate
from api.websec import HttpMiddleware
from core.settings import Settings

SMALL = 1024 * 1024  # every JSON document and form of the API and console
SLACK = 64 * 1024  # a multipart body's boundaries and its few text fields
INGEST = 64 * 1024 * 1024  # a sensor's batch as sent (gzip is capped again once inflated)
INDICATORS = 64 * 1024 * 1024  # one indicator file (MISP event, STIX bundle, CSV…)
CATALOGUE = 1024 * 1024  # a control catalogue's YAML
ENTITIES_CSV = 5 * 1024 * 1024  # the entity registry as CSV

# The only body accepted before any credential: the console's login form (which
# carries the token itself).
OPEN_POSTS = frozenset({"/console/login"})


@dataclass(frozen=True)
class Kind:
    """A kind of route and the largest body it takes."""

    name: str
    paths: re.Pattern[str]
    limit: Callable[[Settings], int]


KINDS = (
    Kind("ingest", re.compile(r"/api/v1/observations/?"), lambda s: INGEST),
    Kind("files", re.compile(r"/api/v1/files/?"), lambda s: s.max_file_bytes + SLACK),
    Kind(
        "evidence",
        re.compile(
            r"/api/v1/assessments/[^/]+/evidence/?|/console/autoevaluacion/[^/]+/evidencia/?"
        ),
        lambda s: s.evidence_max_bytes + SLACK,
    ),
    Kind("indicators", re.compile(r"/api/v1/indicators/?"), lambda s: INDICATORS + SLACK),
    Kind("catalogue", re.compile(r"/api/v1/catalogues/?"), lambda s: CATALOGUE),
    Kind("entities", re.compile(r"/api/v1/entities/import/?"), lambda s: ENTITIES_CSV),
)


def body_limit(path: str, settings: Settings) -> tuple[str, int]:
    """The kind of route a path is, and its body cap in bytes."""
    for kind in KINDS:
        if kind.paths.fullmatch(path):
            return kind.name, kind.limit(settings)
    return "other", SMALL


def store_unavailable() -> JSONResponse:
    """503 + Retry-After: nothing was stored, the caller retries (sensors spool)."""
    return JSONResponse(
        {"detail": "the store is unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


class BodyTooLarge(HTTPException):
    """Raised from the receive channel: FastAPI passes HTTP errors from a body read
    through unchanged, so the caller gets the 413 (JSON, or a console page)."""

    def __init__(self, kind: str, cap: int) -> None:
        super().__init__(413, f"request body larger than {cap} bytes (route kind: {kind})")


class BodyGuard(HttpMiddleware):
    """Pure ASGI middleware: credentials before the body, then a streamed byte count."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = scope["app"].state.services
        kind, cap = body_limit(scope["path"], services.settings)
        if scope["method"] not in SAFE_METHODS and scope["path"] not in OPEN_POSTS:
            request = Request(scope)  # headers and cookies only: no receive channel
            try:
                await run_in_threadpool(authenticate, request, services)
            except HTTPException as exc:
                await _refusal(request, exc)(scope, _nothing, send)
                return
            except (OperationalError, InterfaceError):  # the store is away: as the app says
                await store_unavailable()(scope, _nothing, send)
                return
        length = _content_length(scope)
        if length is not None and length > cap:
            await _refusal(Request(scope), BodyTooLarge(kind, cap))(scope, _nothing, send)
            return
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge(kind, cap)
            return message

        await self.app(scope, capped, send)


async def _nothing() -> Message:
    # The refusals above never read the body; should anything ask, it is empty.
    return {"type": "http.request", "body": b"", "more_body": False}


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _refusal(request: Request, exc: HTTPException) -> Response:
    """The refusal as the routes would give it: the login form or an error page in
    the console, JSON with the same headers elsewhere."""
    if request.url.path.startswith("/console/"):
        if exc.status_code in (401, 403, 429):
            error = "login.throttled" if exc.status_code == 429 else "login.required"
            resp = page(request, "login.html", http_status=exc.status_code, error=error)
        else:
            resp = page(request, "error.html", http_status=exc.status_code, reason=exc.detail)
        resp.headers.update(exc.headers or {})
        return resp
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


# Routes that take a raw body (YAML, CSV) or a free-form form read it through these
# two dependencies, which only await the bytes on the event loop; the routes
# themselves stay plain functions, run in a worker thread with their blocking work.


async def read_body(request: Request) -> bytes:
    return await request.body()


async def read_form(request: Request) -> FormData:
    return await request.form()


RawBody = Annotated[bytes, Depends(read_body)]
FormBody = Annotated[FormData, Depends(read_form)]
