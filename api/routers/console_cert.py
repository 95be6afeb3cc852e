"""Console pages for certification, Spanish first: the national dashboard (charts,
forecast, closest entities) and the public verification page of a certificate.
The self-assessment and the review are console_selfassess and console_review."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console_deps import StaffUser, page
from api.deps import SessionDep
from api.i18n import translator
from certification import progress, standing
from certification.registry import LEVELS
from core.clock import utcnow

router = APIRouter(include_in_schema=False)


@router.get("/console/certificacion", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, principal: StaffUser) -> HTMLResponse:
    p = progress.progress(session, utcnow())
    t = translator("es")
    p["level_names"] = {lv: t(f"level.{lv}") for lv in LEVELS}
    return page(request, "certification.html", p=p, principal=principal)


@router.get("/verificar/{cert_id}", response_class=HTMLResponse)
def verify_page(request: Request, cert_id: str, session: SessionDep) -> HTMLResponse:
    """Public: anyone with a certificate's id sees whether it is genuine and in force."""
    v = standing.verify(session, cert_id, utcnow())
    return page(
        request,
        "verify.html",
        http_status=200 if v else 404,
        c=v.certificate if v else None,
        entity_name=v.entity_name if v else "",
        in_force=bool(v and v.in_force),
        principal=None,
    )
