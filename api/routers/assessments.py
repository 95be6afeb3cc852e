"""`/api/v1/assessments`: an entity's self-assessment (answers, evidence, submit) and
the CERT's review (per-control verdicts, return, decision); `/api/v1/catalogues`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse

from api.access import own_entity
from api.deps import (
    Admin,
    Analyst,
    AnalystCall,
    Caller,
    Entity,
    EntityCall,
    Reader,
    ServicesDep,
    SessionDep,
)
from api.filters import EntityFilter, StatusFilter
from api.inputs import Id
from api.limits import RawBody
from api.presenters import assessment_out
from api.schemas.certification import (
    AnswerIn,
    AssessmentOut,
    AssessmentSummary,
    CatalogueLoaded,
    CatalogueOut,
    CatalogueVersion,
    CommentIn,
    DecisionIn,
    EvidenceAdded,
    OpenIn,
    ReviewIn,
)
from api.schemas.common import binary
from api.uploads import evidence_limits, read_upload, text_body
from certification import assessments, attach, catalogue, evidence
from certification.models import AssessmentRow
from certification.registry import Registry
from core.clock import utcnow
from core.tokens import Principal, Role

router = APIRouter(tags=["certification"])
MAX_CATALOGUE = 1024 * 1024


@router.get("/api/v1/catalogues", response_model=list[CatalogueVersion])
def list_catalogues(session: SessionDep, principal: Reader) -> list[CatalogueVersion]:
    return [CatalogueVersion(**v) for v in catalogue.versions(session)]


@router.get("/api/v1/catalogues/{version}", response_model=CatalogueOut)
def get_catalogue(version: str, session: SessionDep, principal: Reader) -> CatalogueOut:
    cat = catalogue.get(session, version)
    return CatalogueOut.model_validate(
        {
            "version": cat.version,
            "title": cat.title,
            "domains": [{"id": d, "name": n} for d, n in cat.domains],
            "controls": [
                c.__dict__ | {"iso27001": list(c.iso27001), "cis_v8": list(c.cis_v8)}
                for c in cat.controls
            ],
        }
    )


@router.post("/api/v1/catalogues", status_code=201, response_model=CatalogueLoaded)
def load_catalogue(body: RawBody, session: SessionDep, principal: Admin) -> CatalogueLoaded:
    """A new catalogue version as YAML (the request body); it becomes the current one."""
    text = text_body(body, MAX_CATALOGUE, "utf-8", "the catalogue (YAML)")
    cat = catalogue.store(session, text, principal.actor)
    return CatalogueLoaded(version=cat.version, controls=len(cat.controls))


def _mine(session: SessionDep, principal: Principal, assessment_id: int) -> AssessmentRow:
    return assessments.get(session, assessment_id, own_entity(principal))


def _changed(
    c: Caller, assessment_id: int, change: Callable[[AssessmentRow], object]
) -> AssessmentOut:
    """The caller's assessment, changed by the domain call `change`, as the API shows it."""
    a = _mine(c.session, c.principal, assessment_id)
    change(a)
    return assessment_out(c.session, a)


@router.post("/api/v1/assessments", status_code=201, response_model=AssessmentOut)
def open_assessment(body: OpenIn, session: SessionDep, principal: Reader) -> AssessmentOut:
    """An entity opens its own; an admin may open one for an entity."""
    if principal.role is Role.ENTITY:
        entity = principal.entity_id
    elif principal.role is Role.ADMIN:
        entity = body.entity_id
    else:
        raise HTTPException(403, "an entity opens its own assessment (or an admin names one)")
    if entity is None or Registry.get(session, entity) is None:
        raise HTTPException(422, f"no entity {entity!r}")
    a = assessments.open_assessment(session, entity, principal.actor)
    return assessment_out(session, a)


@router.get("/api/v1/assessments", response_model=list[AssessmentSummary])
def list_assessments(
    session: SessionDep, entity: EntityFilter, status: StatusFilter = None
) -> list[AssessmentSummary]:
    rows = assessments.search(session, entity, status)
    return [
        AssessmentSummary(
            id=a.id,
            entity_id=a.entity_id,
            catalogue=a.catalogue_version,
            status=a.status,
            decision=a.decision,
            score=a.score,
            progress=a.progress,
            submitted_at=a.submitted_at.isoformat() if a.submitted_at else None,
        )
        for a in rows
    ]


@router.get("/api/v1/assessments/{assessment_id}", response_model=AssessmentOut)
def get_assessment(assessment_id: Id, session: SessionDep, principal: Reader) -> AssessmentOut:
    return assessment_out(session, _mine(session, principal, assessment_id))


@router.put(
    "/api/v1/assessments/{assessment_id}/answers/{control_id}", response_model=AssessmentOut
)
def put_answer(assessment_id: Id, control_id: str, body: AnswerIn, c: EntityCall) -> AssessmentOut:
    """The entity's answer to one control; a new answer clears the CERT's verdict on it."""
    said, why = body.answer, body.justification
    return _changed(
        c, assessment_id, lambda a: assessments.answer(c.session, a, control_id, said, why, c.actor)
    )


@router.post(
    "/api/v1/assessments/{assessment_id}/evidence", status_code=201, response_model=EvidenceAdded
)
def add_evidence(
    assessment_id: Id,
    principal: Entity,
    services: ServicesDep,
    control_id: Annotated[str, Form(max_length=40)],
    expires_on: Annotated[date, Form(description="the date this evidence stops being valid")],
    file: Annotated[UploadFile, File()],
) -> EvidenceAdded:
    """Checked, hashed and stored outside any write transaction (certification.attach);
    a plain function, so it runs in a worker thread."""
    upload = read_upload(file, services.settings.evidence_max_bytes, "evidencia")
    done = attach.attach(
        services.db,
        evidence_limits(services),
        assessment_id,
        own_entity(principal),
        control_id,
        upload,
        expires_on,
        principal.actor,
    )
    return EvidenceAdded(id=done.id, sha256=done.sha256, size=done.size, control_id=control_id)


@router.get("/api/v1/evidence/{evidence_id}", response_class=FileResponse, responses=binary("*/*"))
def get_evidence(
    evidence_id: Id, session: SessionDep, principal: Reader, services: ServicesDep
) -> FileResponse:
    ev = attach.evidence_file(session, evidence_id, own_entity(principal))
    if ev is None:
        raise HTTPException(404, f"no evidence {evidence_id}")
    return FileResponse(
        evidence.path_of(services.evidence_dir, ev.sha256),
        media_type=ev.media_type,
        filename=ev.filename,
    )


@router.post("/api/v1/assessments/{assessment_id}/submit", response_model=AssessmentOut)
def submit(assessment_id: Id, c: EntityCall) -> AssessmentOut:
    return _changed(c, assessment_id, lambda a: assessments.submit(c.session, a, c.actor))


@router.put(
    "/api/v1/assessments/{assessment_id}/reviews/{control_id}", response_model=AssessmentOut
)
def put_review(assessment_id: Id, control_id: str, body: ReviewIn, c: AnalystCall) -> AssessmentOut:
    """The CERT's verdict on one answer (a rejection says why, for the entity)."""
    verdict, why = body.verdict, body.comment
    return _changed(
        c,
        assessment_id,
        lambda a: assessments.review(c.session, a, control_id, verdict, why, c.actor),
    )


@router.post("/api/v1/assessments/{assessment_id}/return", response_model=AssessmentOut)
def return_assessment(assessment_id: Id, body: CommentIn, c: AnalystCall) -> AssessmentOut:
    why = body.comment
    return _changed(
        c, assessment_id, lambda a: assessments.return_to_entity(c.session, a, why, c.actor)
    )


@router.post("/api/v1/assessments/{assessment_id}/decision", response_model=AssessmentOut)
def decide(
    assessment_id: Id,
    body: DecisionIn,
    session: SessionDep,
    principal: Analyst,
    services: ServicesDep,
) -> AssessmentOut:
    """Apply the certification policy; a passing assessment gets its certificate."""
    a = _mine(session, principal, assessment_id)
    d = assessments.decide(
        session,
        a,
        services.cert_policy,
        services.open_incidents,
        principal.actor,
        utcnow(),
        body.deny,
    )
    return assessment_out(session, a).model_copy(update={"decision_level": d.level})
