"""The API's own description, for token holders only: the OpenAPI document at
/api/openapi.json and Swagger UI at /api/docs (served from /static, started by a
script file: no CDN, no inline script, the strict CSP holds).

The document names the bearer scheme, and says which operations need no token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from api.deps import ServicesDep, authenticate, current_principal
from core.tokens import Principal

SCHEMA_URL = "/api/openapi.json"
BEARER = {"type": "http", "scheme": "bearer", "description": "an API token (`vigia token create`)"}


def install(app: FastAPI) -> None:
    describe_security(app)

    @app.get(SCHEMA_URL, include_in_schema=False)
    def openapi_schema(
        request: Request, principal: Annotated[Principal, Depends(current_principal)]
    ) -> JSONResponse:
        # request.app, not a closure over `app`: FastAPI keeps endpoints in a
        # process-wide cache, and a closure would keep every app (and its services) alive
        return JSONResponse(request.app.openapi())

    @app.get("/api/docs", include_in_schema=False)
    def api_docs(request: Request, services: ServicesDep) -> Response:
        """Swagger UI; a person without a session is sent to the console's login."""
        try:
            authenticate(request, services)
        except HTTPException as exc:
            if exc.status_code == 401:
                return RedirectResponse("/console/login", status_code=303)
            raise
        page: HTMLResponse = request.app.state.templates.TemplateResponse(
            request, "api_docs.html", {"schema_url": SCHEMA_URL}
        )
        page.headers["Cache-Control"] = "no-store"
        return page


def _calls(dependant: Dependant) -> Iterator[Any]:
    yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _routes(items: list[Any]) -> Iterator[APIRoute]:
    for r in items:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "original_router"):  # an included router, resolved lazily
            yield from _routes(r.original_router.routes)


def open_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of the documented routes that ask for no token."""
    return {
        (m.lower(), r.path)
        for r in _routes(app.routes)
        if r.include_in_schema and current_principal not in set(_calls(r.dependant))
        for m in r.methods or ()
    }


def describe_security(app: FastAPI) -> None:
    """Every operation needs a bearer token but those that ask for none."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = BEARER
            schema["security"] = [{"bearer": []}]
            for method, path in open_operations(app):
                op = schema["paths"].get(path, {}).get(method)
                if op is not None:
                    op["security"] = []
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
