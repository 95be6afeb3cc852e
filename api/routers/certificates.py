"""`/api/v1/certificates`, the progress to the national target, and the public
verification of a certificate by its id (the one route here without a token)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from api.access import entity_scope, own_entity
from api.deps import Analyst, Reader, ServicesDep, SessionDep, Staff
from api.i18n import translator
from api.presenters import certificate_out
from api.schemas.certification import (
    AssessmentBrief,
    CertificateOut,
    ChangeIn,
    EntityCertification,
    Progress,
    ProgressHistory,
    PublicCertificate,
)
from api.schemas.common import CSV
from certification import certificates, progress, progress_cache, snapshots, standing
from certification.registry import Registry
from core.clock import iso, utcnow

router = APIRouter(tags=["certification"])


@router.get("/api/v1/certificates", response_model=list[CertificateOut])
def list_certificates(
    session: SessionDep,
    principal: Reader,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> list[CertificateOut]:
    rows = certificates.search(session, entity_scope(principal, entity), status)
    return [CertificateOut.model_validate(certificate_out(c)) for c in rows]


@router.post("/api/v1/certificates/{cert_id}/{action}", response_model=CertificateOut)
def change_certificate(
    cert_id: str,
    action: Literal["suspend", "reinstate", "revoke"],
    body: ChangeIn,
    session: SessionDep,
    principal: Analyst,
) -> CertificateOut:
    c = certificates.change(session, cert_id, action, body.reason, principal.actor, utcnow())
    return CertificateOut.model_validate(certificate_out(c))


@router.get("/api/v1/certification/entities/{entity_id}", response_model=EntityCertification)
def entity_certification(
    entity_id: str, session: SessionDep, principal: Reader
) -> EntityCertification:
    """One entity's state, its newest certificate and assessment (an entity: itself)."""
    own = own_entity(principal)
    if (own and own != entity_id) or Registry.get(session, entity_id) is None:
        raise HTTPException(404, f"no entity {entity_id}")
    cert = standing.newest_certificate(session, entity_id)
    a = standing.newest_assessment(session, entity_id)
    return EntityCertification(
        entity_id=entity_id,
        state=certificates.state_of(cert, a, utcnow()),
        certificate=CertificateOut.model_validate(certificate_out(cert)) if cert else None,
        assessment=AssessmentBrief(id=a.id, status=a.status, score=a.score, progress=a.progress)
        if a
        else None,
    )


@router.get("/api/v1/certification/progress", response_model=Progress, responses=CSV)
def certification_progress(
    session: SessionDep,
    principal: Staff,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    lang: Annotated[
        Literal["es", "en"] | None,
        Query(description="the CSV's header, levels and states in this language (else codes)"),
    ] = None,
    by: Annotated[
        date | None,
        Query(description="YYYY-MM-DD: the monthly pace that reaches the target that day"),
    ] = None,
) -> Response | Progress:
    """Certified / active registered entities against the 60 % target, with breakdowns."""
    now = utcnow()
    if format == "csv":
        rows, _, _ = progress.states(session, now)
        return Response(
            progress.to_csv(rows, translator(lang) if lang else None),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="certificacion.csv"'},
        )
    return Progress.model_validate(progress_cache.figures(session, now, by=by))


@router.get("/api/v1/certification/progress/history", response_model=ProgressHistory)
def certification_progress_history(
    session: SessionDep,
    principal: Staff,
    since: Annotated[date | None, Query(description="first day, YYYY-MM-DD")] = None,
) -> ProgressHistory:
    """The figures as the daily snapshot job recorded them, oldest first."""
    return ProgressHistory.model_validate({"snapshots": snapshots.history(session, since)})


@router.get("/api/v1/public/certificates/{cert_id}", response_model=PublicCertificate)
def verify_certificate(
    cert_id: str, session: SessionDep, services: ServicesDep
) -> PublicCertificate:
    """Open to anyone holding a certificate's id: is it genuine and in force?"""
    v = standing.verify(session, cert_id, utcnow())
    if v is None:
        raise HTTPException(404, "no certificate with this id")
    c = v.certificate
    return PublicCertificate(
        id=c.id,
        entity=v.entity_name,
        level=c.level,
        status=v.status,
        in_force=v.in_force,
        issued_at=iso(c.issued_at),
        valid_until=iso(c.valid_until),
        under_observation=bool(c.observation),
        issuer=services.settings.observer_name,
    )
