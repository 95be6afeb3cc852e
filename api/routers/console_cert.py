"""Console pages for certification, Spanish first: the national dashboard (charts,
forecast, closest entities), the entity's self-assessment, the CERT's review, and
the public verification page of a certificate."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from api.deps import ServicesDep, SessionDep
from api.errors import REFUSED, refusal
from api.i18n import translator
from api.inputs import Id, file_name
from api.limits import FormBody
from api.routers.assessments import view
from api.routers.console import ConsoleAuthError, ConsoleUser, page
from api.routers.console_incidents import AnalystUser, EntityUser
from certification import assessments, certificates, evidence, progress
from certification.models import AssessmentRow, CertificateRow
from certification.registry import LEVELS, Registry
from vigia.core.clock import utcnow
from vigia.core.tokens import Principal, Role
from vigia.wiring import open_incidents

router = APIRouter(include_in_schema=False)


def _staff(principal: ConsoleUser) -> Principal:
    if principal.role not in (Role.ADMIN, Role.ANALYST, Role.AUDITOR):
        raise ConsoleAuthError(403, "login.forbidden")
    return principal


StaffUser = Annotated[Principal, Depends(_staff)]


@router.get("/console/certificacion", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, principal: StaffUser) -> HTMLResponse:
    p = progress.progress(session, utcnow())
    t = translator("es")
    p["level_names"] = {lv: t(f"level.{lv}") for lv in LEVELS}
    return page(request, "certification.html", p=p, principal=principal)


def _newest(session: SessionDep, entity_id: str) -> AssessmentRow | None:
    q = select(AssessmentRow).where(AssessmentRow.entity_id == entity_id)
    return session.execute(q.order_by(AssessmentRow.id.desc())).scalars().first()


@router.get("/console/autoevaluacion", response_class=HTMLResponse)
def self_assessment_page(
    request: Request, session: SessionDep, principal: EntityUser
) -> HTMLResponse:
    return self_assessment(request, session, principal)


def self_assessment(
    request: Request, session: SessionDep, principal: Principal, error: str | None = None
) -> HTMLResponse:
    entity = str(principal.entity_id)
    a = _newest(session, entity)
    cert = (
        session.execute(
            select(CertificateRow)
            .where(CertificateRow.entity_id == entity)
            .order_by(CertificateRow.issued_at.desc())
        )
        .scalars()
        .first()
    )
    return page(
        request,
        "assessment.html",
        a=view(session, a) if a else None,
        state=certificates.state_of(cert, a, utcnow()),
        cert=cert,
        entity=Registry.get(session, entity),
        principal=principal,
        error=error,
        today=date.today().isoformat(),
    )


def _back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _refused(
    request: Request, session: SessionDep, principal: Principal, exc: Exception
) -> Response:
    session.rollback()
    status, reason = refusal(request, exc)
    resp = self_assessment(request, session, principal, error=reason)
    resp.status_code = status
    return resp


@router.post("/console/autoevaluacion/iniciar")
def start(request: Request, session: SessionDep, principal: EntityUser) -> Response:
    try:
        assessments.open_assessment(session, str(principal.entity_id), principal.actor)
    except REFUSED as exc:
        return _refused(request, session, principal, exc)
    return _back("/console/autoevaluacion")


def _mine(session: SessionDep, principal: Principal, assessment_id: int) -> AssessmentRow:
    return assessments.get(session, assessment_id, principal.entity_id)


@router.post("/console/autoevaluacion/{assessment_id}/respuestas")
def save_answers(
    request: Request,
    assessment_id: Id,
    session: SessionDep,
    principal: EntityUser,
    form: FormBody,
) -> Response:
    """The whole form at once: answer_<control> and just_<control> for each control."""
    a = _mine(session, principal, assessment_id)
    current = assessments.answers_of(session, a)
    try:
        for key, value in form.multi_items():
            if not key.startswith("answer_") or not value:
                continue
            cid = key.removeprefix("answer_")
            just = str(form.get(f"just_{cid}", ""))
            held = current.get(cid)
            if held and held.answer == value and held.justification == just.strip():
                continue  # unchanged: keep the CERT's verdict on it
            assessments.answer(session, a, cid, str(value), just, principal.actor)
    except REFUSED as exc:
        return _refused(request, session, principal, exc)
    return _back("/console/autoevaluacion")


@router.post("/console/autoevaluacion/{assessment_id}/evidencia")
def upload_evidence(
    request: Request,
    assessment_id: Id,
    principal: EntityUser,
    services: ServicesDep,
    form: FormBody,
) -> Response:
    """Runs in a worker thread; the file is checked, hashed and stored between a read
    transaction (is the assessment the caller's?) and a short write one."""
    with services.db.transaction(write=False) as session:
        _mine(session, principal, assessment_id)
    upload = form.get("file")
    s = services.settings
    try:
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "adjunte un archivo")
        data = upload.file.read(s.evidence_max_bytes + 1)
        media = (upload.content_type or "").split(";")[0].strip()
        try:
            expires = date.fromisoformat(str(form.get("expires_on", "")))
        except ValueError:
            raise HTTPException(422, "indique la fecha de vencimiento") from None
        evidence.check(data, media, s.evidence_types, s.evidence_max_bytes)
        digest = evidence.put(services.evidence_dir, data)
        with services.db.transaction() as session:
            assessments.add_evidence(
                session,
                _mine(session, principal, assessment_id),
                str(form.get("control_id", "")),
                file_name(upload.filename, "evidencia"),
                media,
                digest,
                len(data),
                expires,
                principal.actor,
            )
    except REFUSED as exc:
        with services.db.transaction(write=False) as session:
            return _refused(request, session, principal, exc)
    return _back("/console/autoevaluacion")


@router.post("/console/autoevaluacion/{assessment_id}/enviar")
def submit(
    request: Request, assessment_id: Id, session: SessionDep, principal: EntityUser
) -> Response:
    a = _mine(session, principal, assessment_id)
    try:
        assessments.submit(session, a, principal.actor)
    except REFUSED as exc:
        return _refused(request, session, principal, exc)
    return _back("/console/autoevaluacion")


@router.get("/console/revisiones", response_class=HTMLResponse)
def reviews(request: Request, session: SessionDep, principal: StaffUser) -> HTMLResponse:
    q = select(AssessmentRow).where(AssessmentRow.status.in_(("submitted", "in_review")))
    rows = list(session.execute(q.order_by(AssessmentRow.submitted_at)).scalars())
    return page(request, "reviews.html", rows=rows, principal=principal)


def _review_page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    assessment_id: int,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    a = assessments.get(session, assessment_id)
    return page(
        request,
        "review.html",
        http_status=status,
        a=view(session, a),
        entity=Registry.get(session, a.entity_id),
        principal=principal,
        error=error,
    )


@router.get("/console/revisiones/{assessment_id}", response_class=HTMLResponse)
def review_page(
    request: Request, assessment_id: Id, session: SessionDep, principal: StaffUser
) -> HTMLResponse:
    return _review_page(request, session, principal, assessment_id)


def _review_action(
    request: Request,
    session: SessionDep,
    principal: Principal,
    assessment_id: int,
    action: str,
    services: Any,
    form: FormData,
) -> Response:
    a = assessments.get(session, assessment_id)
    try:
        if action == "veredictos":
            for key, value in form.multi_items():
                if key.startswith("verdict_") and value:
                    cid = key.removeprefix("verdict_")
                    comment = str(form.get(f"comment_{cid}", ""))
                    assessments.review(session, a, cid, str(value), comment, principal.actor)
        elif action == "devolver":
            assessments.return_to_entity(session, a, str(form.get("comment", "")), principal.actor)
        else:
            assessments.decide(
                session, a, services.cert_policy, open_incidents, principal.actor, utcnow()
            )
    except REFUSED as exc:
        session.rollback()
        status, reason = refusal(request, exc)
        return _review_page(request, session, principal, assessment_id, reason, status)
    return _back(f"/console/revisiones/{assessment_id}")


@router.post("/console/revisiones/{assessment_id}/veredictos")
def save_verdicts(
    request: Request,
    assessment_id: Id,
    session: SessionDep,
    principal: AnalystUser,
    services: ServicesDep,
    form: FormBody,
) -> Response:
    return _review_action(request, session, principal, assessment_id, "veredictos", services, form)


@router.post("/console/revisiones/{assessment_id}/devolver")
def give_back(
    request: Request,
    assessment_id: Id,
    session: SessionDep,
    principal: AnalystUser,
    services: ServicesDep,
    form: FormBody,
) -> Response:
    return _review_action(request, session, principal, assessment_id, "devolver", services, form)


@router.post("/console/revisiones/{assessment_id}/decidir")
def decide(
    request: Request,
    assessment_id: Id,
    session: SessionDep,
    principal: AnalystUser,
    services: ServicesDep,
    form: FormBody,
) -> Response:
    return _review_action(request, session, principal, assessment_id, "decidir", services, form)


@router.get("/verificar/{cert_id}", response_class=HTMLResponse)
def verify_page(request: Request, cert_id: str, session: SessionDep) -> HTMLResponse:
    """Public: anyone with a certificate's id sees whether it is genuine and in force."""
    c = session.get(CertificateRow, cert_id[:40])
    entity = Registry.get(session, c.entity_id) if c else None
    in_force = bool(c and c.status == "valid" and c.valid_until > utcnow())
    return page(
        request,
        "verify.html",
        http_status=200 if c else 404,
        c=c,
        entity=entity,
        in_force=in_force,
        principal=None,
    )
