"""Console pages for certification, Spanish first: the national dashboard (charts,
forecast, closest entities), the entity's self-assessment, the CERT's review, and
the public verification page of a certificate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from api.console_deps import AnalystUser, EntityUser, StaffUser, page, run_form
from api.deps import ServicesDep, SessionDep
from api.errors import REFUSED, refusal
from api.i18n import translator
from api.inputs import Id
from api.limits import FormBody
from api.presenters import assessment_view
from api.uploads import evidence_limits, read_upload
from certification import assessments, attach, certificates, progress, standing
from certification.models import AssessmentRow
from certification.registry import LEVELS, Registry
from core.clock import utcnow
from core.tokens import Principal

router = APIRouter(include_in_schema=False)


@router.get("/console/certificacion", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, principal: StaffUser) -> HTMLResponse:
    p = progress.progress(session, utcnow())
    t = translator("es")
    p["level_names"] = {lv: t(f"level.{lv}") for lv in LEVELS}
    return page(request, "certification.html", p=p, principal=principal)


@router.get("/console/autoevaluacion", response_class=HTMLResponse)
def self_assessment_page(
    request: Request, session: SessionDep, principal: EntityUser
) -> HTMLResponse:
    return self_assessment(request, session, principal)


def self_assessment(
    request: Request, session: SessionDep, principal: Principal, error: str | None = None
) -> HTMLResponse:
    entity = str(principal.entity_id)
    a = standing.newest_assessment(session, entity)
    cert = standing.newest_certificate(session, entity)
    return page(
        request,
        "assessment.html",
        a=assessment_view(session, a) if a else None,
        state=certificates.state_of(cert, a, utcnow()),
        cert=cert,
        entity=Registry.get(session, entity),
        principal=principal,
        error=error,
        today=date.today().isoformat(),
    )


def _self_form(
    request: Request, session: Session, principal: Principal, action: Callable[[], object]
) -> Response:
    """An entity's form on its self-assessment; refused, the page with the reason."""

    def again(reason: str, status: int) -> Response:
        resp = self_assessment(request, session, principal, error=reason)
        resp.status_code = status
        return resp

    return run_form(request, session, action, "/console/autoevaluacion", again)


@router.post("/console/autoevaluacion/iniciar")
def start(request: Request, session: SessionDep, principal: EntityUser) -> Response:
    entity = str(principal.entity_id)
    return _self_form(
        request,
        session,
        principal,
        lambda: assessments.open_assessment(session, entity, principal.actor),
    )


def _mine(session: Session, principal: Principal, assessment_id: int) -> AssessmentRow:
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

    def save() -> None:
        for key, value in form.multi_items():
            if not key.startswith("answer_") or not value:
                continue
            cid = key.removeprefix("answer_")
            just = str(form.get(f"just_{cid}", ""))
            held = current.get(cid)
            if held and held.answer == value and held.justification == just.strip():
                continue  # unchanged: keep the CERT's verdict on it
            assessments.answer(session, a, cid, str(value), just, principal.actor)

    return _self_form(request, session, principal, save)


@router.post("/console/autoevaluacion/{assessment_id}/evidencia")
def upload_evidence(
    request: Request,
    assessment_id: Id,
    principal: EntityUser,
    services: ServicesDep,
    form: FormBody,
) -> Response:
    """The form's file, attached as the API's upload does (certification.attach: no
    transaction is held while the file is checked and stored)."""

    def attach_file() -> None:
        max_bytes = services.settings.evidence_max_bytes
        upload = read_upload(form.get("file"), max_bytes, "evidencia", "adjunte un archivo")
        try:
            expires = date.fromisoformat(str(form.get("expires_on", "")))
        except ValueError:
            raise HTTPException(422, "indique la fecha de vencimiento") from None
        attach.attach(
            services.db,
            evidence_limits(services),
            assessment_id,
            principal.entity_id,
            str(form.get("control_id", "")),
            upload,
            expires,
            principal.actor,
        )

    try:
        attach_file()
    except REFUSED as exc:  # the page again, read in a transaction of its own
        status, reason = refusal(request, exc)
        with services.db.transaction(write=False) as session:
            resp = self_assessment(request, session, principal, error=reason)
        resp.status_code = status
        return resp
    return RedirectResponse("/console/autoevaluacion", status_code=303)


@router.post("/console/autoevaluacion/{assessment_id}/enviar")
def submit(
    request: Request, assessment_id: Id, session: SessionDep, principal: EntityUser
) -> Response:
    a = _mine(session, principal, assessment_id)
    return _self_form(
        request, session, principal, lambda: assessments.submit(session, a, principal.actor)
    )


@router.get("/console/revisiones", response_class=HTMLResponse)
def reviews(request: Request, session: SessionDep, principal: StaffUser) -> HTMLResponse:
    rows = standing.awaiting_review(session)
    return page(request, "reviews.html", rows=rows, principal=principal)


def _review_page(
    request: Request,
    session: Session,
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
        a=assessment_view(session, a),
        entity=Registry.get(session, a.entity_id),
        principal=principal,
        error=error,
    )


@router.get("/console/revisiones/{assessment_id}", response_class=HTMLResponse)
def review_page(
    request: Request, assessment_id: Id, session: SessionDep, principal: StaffUser
) -> HTMLResponse:
    return _review_page(request, session, principal, assessment_id)


@dataclass(frozen=True)
class ReviewForm:
    """A CERT analyst's form on an assessment under review."""

    request: Request
    session: Session
    principal: Principal
    assessment: AssessmentRow
    form: FormData

    def run(self, action: Callable[[], object]) -> Response:
        request, session, a = self.request, self.session, self.assessment

        def again(reason: str, status: int) -> Response:
            return _review_page(request, session, self.principal, a.id, reason, status)

        return run_form(request, session, action, f"/console/revisiones/{a.id}", again)


def _review_form(
    request: Request,
    assessment_id: Id,
    session: SessionDep,
    principal: AnalystUser,
    form: FormBody,
) -> ReviewForm:
    a = assessments.get(session, assessment_id)
    return ReviewForm(request, session, principal, a, form)


Review = Annotated[ReviewForm, Depends(_review_form)]


@router.post("/console/revisiones/{assessment_id}/veredictos")
def save_verdicts(r: Review) -> Response:
    """verdict_<control> and comment_<control> for each control reviewed."""

    def verdicts() -> None:
        for key, value in r.form.multi_items():
            if key.startswith("verdict_") and value:
                cid = key.removeprefix("verdict_")
                comment = str(r.form.get(f"comment_{cid}", ""))
                assessments.review(
                    r.session, r.assessment, cid, str(value), comment, r.principal.actor
                )

    return r.run(verdicts)


@router.post("/console/revisiones/{assessment_id}/devolver")
def give_back(r: Review) -> Response:
    comment = str(r.form.get("comment", ""))
    return r.run(
        lambda: assessments.return_to_entity(r.session, r.assessment, comment, r.principal.actor)
    )


@router.post("/console/revisiones/{assessment_id}/decidir")
def decide(r: Review, services: ServicesDep) -> Response:
    return r.run(
        lambda: assessments.decide(
            r.session,
            r.assessment,
            services.cert_policy,
            services.open_incidents,
            r.principal.actor,
            utcnow(),
        )
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
