"""The certification documents: the certificate as a PDF, the assessment report as
PDF and XLSX, the national progress report as PDF. The same access as the JSON
routes (an entity reads only its own); the documents are drawn in certification/.
Included before the assessments router: `/assessments/{id}.pdf` is not an id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.access import own_entity
from api.deps import Reader, ServicesDep, SessionDep, Staff
from api.inputs import Id
from api.schemas.common import binary
from certification import assessments, documents, progress, progress_pdf, report_docs
from core.clock import utcnow

router = APIRouter(tags=["certification"])
PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _file(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/api/v1/certificates/{cert_id}.pdf", response_class=Response, responses=binary(PDF))
def certificate_pdf(
    cert_id: str,
    request: Request,
    session: SessionDep,
    principal: Reader,
    services: ServicesDep,
) -> Response:
    """The certificate in Spanish with a QR code to its public verification page
    (at VIGIA_PUBLIC_URL, else the address this request came to)."""
    base = services.settings.public_url or str(request.base_url)
    facts = documents.certificate_facts(
        session,
        cert_id,
        utcnow(),
        base,
        services.settings.observer_name,
        own_entity(principal),
    )
    return _file(documents.certificate_pdf(facts), PDF, f"certificado-{facts.id}.pdf")


def _report(
    assessment_id: Id, session: SessionDep, principal: Reader, services: ServicesDep
) -> report_docs.ReportFacts:
    """What both report documents draw: the assessment as the caller may read it."""
    a = assessments.get(session, assessment_id, own_entity(principal))
    return report_docs.report_facts(session, a, utcnow().date(), services.settings.observer_name)


Report = Annotated[report_docs.ReportFacts, Depends(_report)]


@router.get(
    "/api/v1/assessments/{assessment_id}.pdf", response_class=Response, responses=binary(PDF)
)
def assessment_pdf(f: Report) -> Response:
    """Answers, verdicts, comments and the evidence with its SHA-256."""
    return _file(report_docs.report_pdf(f), PDF, f"evaluacion-{f.id}.pdf")


@router.get(
    "/api/v1/assessments/{assessment_id}.xlsx", response_class=Response, responses=binary(XLSX)
)
def assessment_xlsx(f: Report) -> Response:
    """One row per control (sheet Controles), the evidence (Evidencias), a summary."""
    return _file(report_docs.report_xlsx(f), XLSX, f"evaluacion-{f.id}.xlsx")


@router.get("/api/v1/certification/progress.pdf", response_class=Response, responses=binary(PDF))
def progress_report(session: SessionDep, principal: Staff, services: ServicesDep) -> Response:
    """The national progress with its charts drawn in the PDF."""
    now = utcnow()
    p = progress.progress(session, now)
    return _file(
        progress_pdf.progress_pdf(p, now, services.settings.observer_name), PDF, "avance.pdf"
    )
