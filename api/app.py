"""The FastAPI application, built around the services the composition root made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import InterfaceError, OperationalError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import apidocs, errors
from api.inputs import document_validation_errors
from api.limits import BodyGuard, store_unavailable
from api.oidc import Providers
from api.routers import (
    admin,
    alerts,
    assessments,
    cert_documents,
    certificates,
    console,
    console_alerts,
    console_cert,
    console_evidence,
    console_incidents,
    console_queue,
    console_review,
    console_selfassess,
    exposure,
    health,
    incident_reports,
    incident_sharing,
    incident_work,
    incidents,
    notify_prefs,
    observations,
    ops,
    registry,
    rules,
    sensors,
    sso,
    taxii,
)
from api.schemas.common import ERRORS
from api.services import Services
from api.websec import SecurityHeaders
from correlator.ingest import StoreUnavailable
from correlator.liveindex import IndexLoading

HERE = Path(__file__).parent


def create_app(services: Services) -> FastAPI:
    # No open documentation routes: the schema and Swagger UI are served to token
    # holders only (api.apidocs).
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.live.start()  # the indicator index loads in the background: /ready says when
        # The compiled warninglists (seconds on a new data dir), off the first upload's path
        services.warninglists.start()
        yield

    app = FastAPI(
        title="Vigía",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        responses=ERRORS,  # every refusal documented: {"detail": reason}
    )
    app.state.services = services
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    for r in (
        health.router,
        ops.router,
        observations.router,
        sensors.router,
        alerts.router,
        registry.router,  # before admin: /entities.csv and /entities/import are not ids
        notify_prefs.router,
        exposure.router,
        admin.router,
        incident_reports.router,  # before incidents: /metrics is not an id
        incidents.router,
        incident_work.router,
        incident_sharing.router,
        cert_documents.router,  # before assessments: /{id}.pdf is not an id
        assessments.router,
        certificates.router,
        rules.router,
        taxii.router,
    ):
        app.include_router(r)
    console.install(app)
    app.state.oidc = Providers.from_settings(services.settings)  # single sign-on, or None
    app.include_router(sso.router)
    errors.install(app)  # the services' refusals: status and translated message, once
    app.include_router(console_incidents.router)
    app.include_router(console_cert.router)
    app.include_router(console_selfassess.router)  # the entity's self-assessment
    app.include_router(console_evidence.router)  # and its evidence files
    app.include_router(console_review.router)  # the CERT's review and decision
    app.include_router(console_queue.router)  # the alert queue and its actions
    app.include_router(console_alerts.router)  # the alert page and the pivots
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    apidocs.install(app)  # /api/openapi.json and /api/docs, for token holders

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/alertas")

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(StoreUnavailable)
    async def store_away(request: Request, exc: Exception) -> JSONResponse:
        # The database went away: nothing was stored, so the caller retries later
        # (sensors keep the batch in their spool).
        return store_unavailable()

    @app.exception_handler(IndexLoading)
    async def index_loading(request: Request, exc: Exception) -> JSONResponse:
        # Right after start-up: nothing is held waiting for the index; the sensor
        # keeps the batch in its spool and sends it again.
        loaded = exc.loaded if isinstance(exc, IndexLoading) else 0
        return JSONResponse(
            {"detail": f"the indicator index is loading ({loaded} so far); retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # One readable reason first, FastAPI's detail list after it.
        errs = exc.errors()
        first = errs[0] if errs else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        reason = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        return JSONResponse({"detail": reason, "errors": _plain(errs)}, status_code=422)

    # Credentials before any body, and each route kind's body cap as it streams
    # (api.limits); inside the two below, which must see its answers too.
    app.add_middleware(BodyGuard)
    document_validation_errors(app)  # the 422s as the handler above writes them
    # Outermost, so added last: the security headers go on every answer, and a
    # trusted proxy's X-Forwarded-Proto/-For are applied before anything reads
    # the scheme (Secure cookies) or the client address (the throttle).
    app.add_middleware(SecurityHeaders)
    if services.settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=services.settings.trusted_proxies)
    return app


def _plain(errors: object) -> object:
    """Validation errors can carry exception objects; keep what JSON can say."""
    if isinstance(errors, list):
        return [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
    return []
