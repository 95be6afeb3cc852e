"""`/api/v1/certificates`, the progress to the national target, and the public
verification of a certificate by its id (the one route here without a token)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import Field
from sqlalchemy import select

from api.access import entity_scope, own_entity
from api.deps import Analyst, Reader, ServicesDep, SessionDep, Staff
from api.i18n import translator
from api.inputs import Input, Text
from certification import certificates, progress, snapshots
from certification.models import AssessmentRow, CertificateRow
from certification.registry import Registry
from vigia.core.clock import iso, utcnow

router = APIRouter(tags=["certification"])


class ChangeIn(Input):
    reason: Text = Field(default="", max_length=5000)


def _out(c: CertificateRow) -> dict[str, Any]:
    return {
        "id": c.id,
        "entity_id": c.entity_id,
        "assessment_id": c.assessment_id,
        "level": c.level,
        "status": c.status,
        "score": c.score,
        "issued_at": iso(c.issued_at),
        "valid_until": iso(c.valid_until),
        "observation": c.observation or None,
        "reason": c.reason or None,
    }


@router.get("/api/v1/certificates")
def list_certificates(
    session: SessionDep,
    principal: Reader,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> list[dict[str, Any]]:
    rows = certificates.search(session, entity_scope(principal, entity), status)
    return [_out(c) for c in rows]


@router.post("/api/v1/certificates/{cert_id}/{action}")
def change_certificate(
    cert_id: str,
    action: Literal["suspend", "reinstate", "revoke"],
    body: ChangeIn,
    session: SessionDep,
    principal: Analyst,
) -> dict[str, Any]:
    c = certificates.change(session, cert_id, action, body.reason, principal.actor, utcnow())
    return _out(c)


@router.get("/api/v1/certification/entities/{entity_id}")
def entity_certification(entity_id: str, session: SessionDep, principal: Reader) -> dict[str, Any]:
    """One entity's state, its newest certificate and assessment (an entity: itself)."""
    own = own_entity(principal)
    if (own and own != entity_id) or Registry.get(session, entity_id) is None:
        raise HTTPException(404, f"no entity {entity_id}")
    now = utcnow()
    cert = (
        session.execute(
            select(CertificateRow)
            .where(CertificateRow.entity_id == entity_id)
            .order_by(CertificateRow.issued_at.desc())
        )
        .scalars()
        .first()
    )
    a = (
        session.execute(
            select(AssessmentRow)
            .where(AssessmentRow.entity_id == entity_id)
            .order_by(AssessmentRow.id.desc())
        )
        .scalars()
        .first()
    )
    return {
        "entity_id": entity_id,
        "state": certificates.state_of(cert, a, now),
        "certificate": _out(cert) if cert else None,
        "assessment": {"id": a.id, "status": a.status, "score": a.score, "progress": a.progress}
        if a
        else None,
    }


@router.get("/api/v1/certification/progress", response_model=None)
def certification_progress(
    session: SessionDep,
    principal: Staff,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    lang: Annotated[
        Literal["es", "en"] | None,
        Query(description="the CSV's header, levels and states in this language (else codes)"),
    ] = None,
) -> Response | dict[str, Any]:
    """Certified / active registered entities against the 60 % target, with breakdowns."""
    now = utcnow()
    if format == "csv":
        rows, _, _ = progress.states(session, now)
        return Response(
            progress.to_csv(rows, translator(lang) if lang else None),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="certificacion.csv"'},
        )
    return progress.progress(session, now)


@router.get("/api/v1/certification/progress/history")
def certification_progress_history(
    session: SessionDep,
    principal: Staff,
    since: Annotated[date | None, Query(description="first day, YYYY-MM-DD")] = None,
) -> dict[str, Any]:
    """The figures as the daily snapshot job recorded them, oldest first."""
    return {"snapshots": snapshots.history(session, since)}


@router.get("/api/v1/public/certificates/{cert_id}")
def verify_certificate(cert_id: str, session: SessionDep, services: ServicesDep) -> dict[str, Any]:
    """Open to anyone holding a certificate's id: is it genuine and in force?"""
    c = session.get(CertificateRow, cert_id[:40])
    if c is None:
        raise HTTPException(404, "no certificate with this id")
    entity = Registry.get(session, c.entity_id)
    now = utcnow()
    in_force = c.status == "valid" and c.valid_until > now
    return {
        "id": c.id,
        "entity": entity.name if entity else c.entity_id,
        "level": c.level,
        "status": c.status if c.status != "valid" or in_force else "expired",
        "in_force": in_force,
        "issued_at": iso(c.issued_at),
        "valid_until": iso(c.valid_until),
        "under_observation": bool(c.observation),
        "issuer": services.settings.observer_name,
    }
