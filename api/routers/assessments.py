"""`/api/v1/assessments`: an entity's self-assessment (answers, evidence, submit) and
the CERT's review (per-control verdicts, return, decision); `/api/v1/catalogues`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import Field

from api.access import entity_scope, own_entity
from api.deps import Admin, Analyst, Entity, Reader, ServicesDep, SessionDep
from api.inputs import Id, Input, Text, file_name
from api.limits import RawBody
from certification import assessments, catalogue, evidence
from certification.models import AssessmentRow, EvidenceRow
from certification.registry import Registry
from vigia.core.clock import utcnow
from vigia.core.tokens import Role
from vigia.wiring import open_incidents

router = APIRouter(tags=["certification"])
MAX_CATALOGUE = 1024 * 1024


class AnswerIn(Input):
    answer: Literal["implemented", "partial", "not_implemented", "not_applicable"]
    justification: Text = Field(default="", max_length=5000)


class ReviewIn(Input):
    verdict: Literal["accepted", "rejected"]
    comment: Text = Field(default="", max_length=5000)


class CommentIn(Input):
    comment: Text = Field(default="", max_length=5000)


class DecisionIn(Input):
    deny: Text = Field(default="", max_length=5000, description="refuse, with this reason")


class OpenIn(Input):
    entity_id: str | None = Field(default=None, max_length=64, description="admins only")


@router.get("/api/v1/catalogues")
def list_catalogues(session: SessionDep, principal: Reader) -> list[dict[str, Any]]:
    return catalogue.versions(session)


@router.get("/api/v1/catalogues/{version}")
def get_catalogue(version: str, session: SessionDep, principal: Reader) -> dict[str, Any]:
    cat = catalogue.get(session, version)
    return {
        "version": cat.version,
        "title": cat.title,
        "domains": [{"id": d, "name": n} for d, n in cat.domains],
        "controls": [
            c.__dict__ | {"iso27001": list(c.iso27001), "cis_v8": list(c.cis_v8)}
            for c in cat.controls
        ],
    }


@router.post("/api/v1/catalogues", status_code=201)
def load_catalogue(body: RawBody, session: SessionDep, principal: Admin) -> dict[str, Any]:
    """A new catalogue version as YAML (the request body); it becomes the current one."""
    if len(body) > MAX_CATALOGUE:
        raise HTTPException(413, f"catalogues are limited to {MAX_CATALOGUE} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(422, "the catalogue must be UTF-8 YAML") from None
    cat = catalogue.store(session, text, principal.actor)
    return {"version": cat.version, "controls": len(cat.controls)}


def view(session: SessionDep, a: AssessmentRow) -> dict[str, Any]:
    cat = catalogue.get(session, a.catalogue_version)
    today = utcnow().date()
    s = assessments.score_of(session, a, today)
    got = assessments.answers_of(session, a)
    ev: dict[str, list[dict[str, Any]]] = {}
    for e in assessments.evidence_of(session, a):
        ev.setdefault(e.control_id, []).append(
            {
                "id": e.id,
                "filename": e.filename,
                "media_type": e.media_type,
                "size": e.size,
                "sha256": e.sha256,
                "expires_on": e.expires_on.isoformat(),
                "expired": e.expires_on < today,
            }
        )
    return {
        "id": a.id,
        "entity_id": a.entity_id,
        "catalogue": a.catalogue_version,
        "status": a.status,
        "decision": a.decision,
        "decision_reasons": a.decision_reasons,
        "score": s.overall,
        "progress": round(s.progress, 4),
        "mandatory_unmet": s.mandatory_unmet,
        "unevidenced": s.unevidenced,
        "domains": [d.__dict__ for d in s.domains],
        "controls": [
            {
                "id": c.id,
                "domain": c.domain,
                "title": c.title,
                "objective": c.objective,
                "applicability": c.applicability,
                "guidance": c.guidance,
                "iso27001": list(c.iso27001),
                "cis_v8": list(c.cis_v8),
                "mandatory": c.mandatory,
                "answer": got[c.id].answer if c.id in got else None,
                "justification": got[c.id].justification if c.id in got else "",
                "review": got[c.id].review if c.id in got else None,
                "review_comment": got[c.id].review_comment if c.id in got else "",
                "evidence": ev.get(c.id, []),
            }
            for c in cat.controls
        ],
    }


def _mine(session: SessionDep, principal: Any, assessment_id: int) -> AssessmentRow:
    return assessments.get(session, assessment_id, own_entity(principal))


@router.post("/api/v1/assessments", status_code=201)
def open_assessment(body: OpenIn, session: SessionDep, principal: Reader) -> dict[str, Any]:
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
    return view(session, a)


@router.get("/api/v1/assessments")
def list_assessments(
    session: SessionDep,
    principal: Reader,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> list[dict[str, Any]]:
    rows = assessments.search(session, entity_scope(principal, entity), status)
    return [
        {
            "id": a.id,
            "entity_id": a.entity_id,
            "catalogue": a.catalogue_version,
            "status": a.status,
            "decision": a.decision,
            "score": a.score,
            "progress": a.progress,
            "submitted_at": a.submitted_at.isoformat() if a.submitted_at else None,
        }
        for a in rows
    ]


@router.get("/api/v1/assessments/{assessment_id}")
def get_assessment(assessment_id: Id, session: SessionDep, principal: Reader) -> dict[str, Any]:
    return view(session, _mine(session, principal, assessment_id))


@router.put("/api/v1/assessments/{assessment_id}/answers/{control_id}")
def put_answer(
    assessment_id: Id, control_id: str, body: AnswerIn, session: SessionDep, principal: Entity
) -> dict[str, Any]:
    a = _mine(session, principal, assessment_id)
    assessments.answer(session, a, control_id, body.answer, body.justification, principal.actor)
    return view(session, a)


@router.post("/api/v1/assessments/{assessment_id}/evidence", status_code=201)
def add_evidence(
    assessment_id: Id,
    principal: Entity,
    services: ServicesDep,
    control_id: Annotated[str, Form(max_length=40)],
    expires_on: Annotated[date, Form(description="the date this evidence stops being valid")],
    file: Annotated[UploadFile, File()],
) -> dict[str, Any]:
    """Runs in a worker thread; the file is checked, hashed and stored between a read
    transaction (is the assessment the caller's?) and a short write one."""
    with services.db.transaction(write=False) as session:
        _mine(session, principal, assessment_id)
    s = services.settings
    data = file.file.read(s.evidence_max_bytes + 1)
    media = (file.content_type or "").split(";")[0].strip()
    evidence.check(data, media, s.evidence_types, s.evidence_max_bytes)
    digest = evidence.put(services.evidence_dir, data)
    with services.db.transaction() as session:
        ev = assessments.add_evidence(
            session,
            _mine(session, principal, assessment_id),
            control_id,
            file_name(file.filename, "evidencia"),
            media,
            digest,
            len(data),
            expires_on,
            principal.actor,
        )
        session.flush()
    return {"id": ev.id, "sha256": digest, "size": len(data), "control_id": control_id}


@router.get("/api/v1/evidence/{evidence_id}")
def get_evidence(
    evidence_id: Id, session: SessionDep, principal: Reader, services: ServicesDep
) -> FileResponse:
    ev = session.get(EvidenceRow, evidence_id)
    if ev is None:
        raise HTTPException(404, f"no evidence {evidence_id}")
    _mine(session, principal, ev.assessment_id)  # an entity reads only its own
    return FileResponse(
        evidence.path_of(services.evidence_dir, ev.sha256),
        media_type=ev.media_type,
        filename=ev.filename,
    )


@router.post("/api/v1/assessments/{assessment_id}/submit")
def submit(assessment_id: Id, session: SessionDep, principal: Entity) -> dict[str, Any]:
    a = _mine(session, principal, assessment_id)
    assessments.submit(session, a, principal.actor)
    return view(session, a)


@router.put("/api/v1/assessments/{assessment_id}/reviews/{control_id}")
def put_review(
    assessment_id: Id, control_id: str, body: ReviewIn, session: SessionDep, principal: Analyst
) -> dict[str, Any]:
    a = _mine(session, principal, assessment_id)
    assessments.review(session, a, control_id, body.verdict, body.comment, principal.actor)
    return view(session, a)


@router.post("/api/v1/assessments/{assessment_id}/return")
def return_assessment(
    assessment_id: Id, body: CommentIn, session: SessionDep, principal: Analyst
) -> dict[str, Any]:
    a = _mine(session, principal, assessment_id)
    assessments.return_to_entity(session, a, body.comment, principal.actor)
    return view(session, a)


@router.post("/api/v1/assessments/{assessment_id}/decision")
def decide(
    assessment_id: Id,
    body: DecisionIn,
    session: SessionDep,
    principal: Analyst,
    services: ServicesDep,
) -> dict[str, Any]:
    """Apply the certification policy; a passing assessment gets its certificate."""
    a = _mine(session, principal, assessment_id)
    d = assessments.decide(
        session, a, services.cert_policy, open_incidents, principal.actor, utcnow(), body.deny
    )
    out = view(session, a)
    out["decision_level"] = d.level
    return out
