"""Console pages for certification, Spanish first: the national dashboard (charts,
forecast, closest entities) and the public verification page of a certificate.
The self-assessment and the review are console_selfassess and console_review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api import national_view
from api.console_deps import StaffPage, page
from api.deps import SessionDep
from certification import standing
from core.clock import utcnow

router = APIRouter(include_in_schema=False)


@router.get("/console/certificacion", response_class=HTMLResponse)
def dashboard(c: StaffPage, fecha: Annotated[str, Query(max_length=10)] = "") -> HTMLResponse:
    """The national view; `fecha` (YYYY-MM-DD): the day the needed pace is worked out for."""
    v = national_view.build(c.session, utcnow(), fecha, national_view.language(c.request))
    return c.page(
        "certification.html", http_status=v.status, p=v.figures, fecha=v.fecha, error=v.error
    )


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
