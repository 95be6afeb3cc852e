"""Self-assessment and CERT review: open, answer, attach evidence, submit; review
each control, return to the entity, decide. Every change is audited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import catalogue, certificates, scoring
from certification.errors import CertConflict, CertError, CertNotFound
from certification.models import AnswerRow, AssessmentRow, EvidenceRow
from certification.policy import CertPolicy, Decision, OpenIncidents, no_incidents
from core import audit
from core.clock import utcnow

OPEN = ("in_progress", "submitted", "in_review", "returned")
EDITABLE = ("in_progress", "returned")


def _log(session: Session, actor: str, action: str, a: AssessmentRow, **detail: object) -> None:
    audit.append(session, actor, f"assessment.{action}", "assessment", str(a.id), dict(detail))


def get(session: Session, assessment_id: int, entity_id: str | None = None) -> AssessmentRow:
    """The assessment; for an entity caller, only its own (else the same 404)."""
    a = session.get(AssessmentRow, assessment_id)
    if a is None or (entity_id is not None and a.entity_id != entity_id):
        raise CertNotFound("assessment.not_found", assessment_id=assessment_id)
    return a


def answers_of(session: Session, a: AssessmentRow) -> dict[str, AnswerRow]:
    q = select(AnswerRow).where(AnswerRow.assessment_id == a.id)
    return {r.control_id: r for r in session.execute(q).scalars()}


def previous_answers(session: Session, a: AssessmentRow) -> dict[str, AnswerRow]:
    """The answers of the entity's round before this one (its newest earlier
    assessment that has any), by control: what a new round starts from."""
    q = (
        select(AnswerRow)
        .join(AssessmentRow, AssessmentRow.id == AnswerRow.assessment_id)
        .where(AssessmentRow.entity_id == a.entity_id, AssessmentRow.id < a.id)
        .order_by(AssessmentRow.id.desc())
    )
    out: dict[str, AnswerRow] = {}
    for r in session.execute(q).scalars():
        if out and r.assessment_id != next(iter(out.values())).assessment_id:
            break  # an older round
        out[r.control_id] = r
    return out


def evidence_of(session: Session, a: AssessmentRow) -> list[EvidenceRow]:
    q = select(EvidenceRow).where(EvidenceRow.assessment_id == a.id).order_by(EvidenceRow.id)
    return list(session.execute(q).scalars())


def score_of(session: Session, a: AssessmentRow, today: date) -> scoring.Score:
    cat = catalogue.get(session, a.catalogue_version)
    until: dict[str, list[date]] = {}
    for e in evidence_of(session, a):
        until.setdefault(e.control_id, []).append(e.expires_on)
    answers = {
        cid: scoring.Answer(r.answer, r.review, tuple(until.get(cid, ())))
        for cid, r in answers_of(session, a).items()
    }
    return scoring.score(cat, answers, today)


def _rescore(session: Session, a: AssessmentRow) -> None:
    session.flush()
    s = score_of(session, a, utcnow().date())
    a.score, a.progress, a.updated_at = s.overall, round(s.progress, 4), utcnow()


def open_assessment(session: Session, entity_id: str, actor: str) -> AssessmentRow:
    q = select(AssessmentRow.id).where(
        AssessmentRow.entity_id == entity_id, AssessmentRow.status.in_(OPEN)
    )
    held = session.execute(q).scalar()
    if held is not None:
        raise CertConflict("assessment.open_exists", assessment_id=held, entity_id=entity_id)
    cat = catalogue.get(session)
    now = utcnow()
    a = AssessmentRow(
        entity_id=entity_id,
        catalogue_version=cat.version,
        status="in_progress",
        decision_reasons=[],
        score=None,
        progress=0.0,
        created_at=now,
        updated_at=now,
    )
    session.add(a)
    session.flush()
    _log(session, actor, "open", a, entity=entity_id, catalogue=cat.version)
    return a


def _editable(a: AssessmentRow) -> None:
    if a.status not in EDITABLE:
        raise CertConflict("assessment.locked", assessment_id=a.id, status=a.status)


def answer(
    session: Session,
    a: AssessmentRow,
    control_id: str,
    value: str,
    justification: str,
    actor: str,
) -> None:
    _editable(a)
    if catalogue.get(session, a.catalogue_version).control(control_id) is None:
        raise CertNotFound("control.not_found", control_id=control_id, version=a.catalogue_version)
    if value not in scoring.ANSWERS:
        raise CertError("answer.invalid", allowed=", ".join(scoring.ANSWERS))
    if value == "not_applicable" and not justification.strip():
        raise CertError("answer.justification_needed", control_id=control_id)
    row = session.get(AnswerRow, (a.id, control_id))
    if row is None:
        row = AnswerRow(
            assessment_id=a.id, control_id=control_id, review_comment="", reviewed_by=""
        )
        session.add(row)
    # A new answer is a new claim: the CERT's earlier verdict no longer applies.
    row.answer, row.justification, row.updated_at = value, justification.strip(), utcnow()
    row.review = None
    _rescore(session, a)
    _log(session, actor, "answer", a, control=control_id, answer=value)


def add_evidence(
    session: Session,
    a: AssessmentRow,
    control_id: str,
    filename: str,
    media_type: str,
    sha256: str,
    size: int,
    expires_on: date,
    actor: str,
) -> EvidenceRow:
    """Record a file already stored by `evidence.put` as backing a control."""
    _editable(a)
    if catalogue.get(session, a.catalogue_version).control(control_id) is None:
        raise CertNotFound("control.not_found", control_id=control_id, version=a.catalogue_version)
    if expires_on <= utcnow().date():
        raise CertError("evidence.expired")
    ev = EvidenceRow(
        assessment_id=a.id,
        control_id=control_id,
        sha256=sha256,
        filename=filename[:300],
        media_type=media_type,
        size=size,
        expires_on=expires_on,
        uploaded_at=utcnow(),
        uploaded_by=actor,
    )
    session.add(ev)
    _rescore(session, a)
    _log(session, actor, "evidence", a, control=control_id, sha256=sha256, size=size)
    return ev


def remove_evidence(session: Session, a: AssessmentRow, evidence_id: int, actor: str) -> str:
    """Take an evidence file off the assessment while the entity may still change it;
    the stored bytes stay (another record may hold the same file). Its control's id."""
    _editable(a)
    ev = session.get(EvidenceRow, evidence_id)
    if ev is None or ev.assessment_id != a.id:
        raise CertNotFound("evidence.not_found", evidence_id=evidence_id)
    control = ev.control_id
    session.delete(ev)
    _rescore(session, a)
    _log(session, actor, "evidence_remove", a, control=control, sha256=ev.sha256)
    return control


def submit(session: Session, a: AssessmentRow, actor: str) -> None:
    _editable(a)
    cat = catalogue.get(session, a.catalogue_version)
    missing = [c.id for c in cat.controls if c.id not in answers_of(session, a)]
    if missing:
        raise CertError("assessment.unanswered", count=len(missing), first=missing[0])
    a.status, a.submitted_at, a.updated_at = "submitted", utcnow(), utcnow()
    _log(session, actor, "submit", a)


def review(
    session: Session, a: AssessmentRow, control_id: str, verdict: str, comment: str, actor: str
) -> None:
    if a.status not in ("submitted", "in_review"):
        raise CertConflict("assessment.not_reviewable", assessment_id=a.id, status=a.status)
    if verdict not in ("accepted", "rejected"):
        raise CertError("review.verdict_invalid")
    if verdict == "rejected" and not comment.strip():
        raise CertError("review.comment_needed")
    row = session.get(AnswerRow, (a.id, control_id))
    if row is None:
        raise CertNotFound("answer.not_found", control_id=control_id)
    row.review, row.review_comment, row.reviewed_by = verdict, comment.strip(), actor
    a.status = "in_review"
    _rescore(session, a)
    _log(session, actor, "review", a, control=control_id, verdict=verdict)


def return_to_entity(session: Session, a: AssessmentRow, comment: str, actor: str) -> None:
    if a.status not in ("submitted", "in_review"):
        raise CertConflict("assessment.not_returnable", assessment_id=a.id, status=a.status)
    a.status, a.updated_at = "returned", utcnow()
    a.decision_reasons = [comment.strip()] if comment.strip() else []
    _log(session, actor, "return", a, comment=comment.strip())


def decide(
    session: Session,
    a: AssessmentRow,
    policy: CertPolicy,
    open_incidents: OpenIncidents,
    actor: str,
    now: datetime,
    deny: str = "",
) -> Decision:
    """Apply the policy (or deny with a reason); a passing decision issues a certificate."""
    if a.status != "in_review":
        raise CertConflict("assessment.not_decidable", assessment_id=a.id, status=a.status)
    pending = [
        cid
        for cid, r in answers_of(session, a).items()
        if r.review is None and r.answer != "not_applicable"
    ]
    if pending and not deny:
        raise CertConflict(
            "assessment.reviews_pending", count=len(pending), first=sorted(pending)[0]
        )
    s = score_of(session, a, now.date())
    decision = (
        Decision(None, [deny.strip()])
        if deny.strip()
        else policy.decide(s, open_incidents(session, a.entity_id), now)
    )
    a.status, a.decided_at, a.updated_at = "decided", now, now
    a.decision = decision.level or "denied"
    a.decision_reasons = decision.reasons
    _log(session, actor, "decide", a, decision=a.decision, reasons=decision.reasons)
    if decision.level is not None:
        certificates.issue(session, a, decision.level, s.overall or 0.0, policy, actor, now)
    return decision


def refuse(session: Session, a: AssessmentRow, reason: str, actor: str, now: datetime) -> Decision:
    """The CERT refuses the certificate whatever the policy would give: it says why."""
    if not reason.strip():
        raise CertError("decision.reason_needed")
    return decide(session, a, CertPolicy(), no_incidents, actor, now, deny=reason)


def latest(session: Session, entity_ids: Sequence[str] | None = None) -> dict[str, AssessmentRow]:
    """Each entity's newest assessment."""
    q = select(AssessmentRow).order_by(AssessmentRow.entity_id, AssessmentRow.id)
    if entity_ids is not None:
        q = q.where(AssessmentRow.entity_id.in_(entity_ids))
    return {a.entity_id: a for a in session.execute(q).scalars()}


def search(session: Session, entity_id: str | None, status: str | None) -> list[AssessmentRow]:
    """Newest first, at most 500."""
    q = select(AssessmentRow).order_by(AssessmentRow.id.desc()).limit(500)
    if entity_id:
        q = q.where(AssessmentRow.entity_id == entity_id)
    if status:
        q = q.where(AssessmentRow.status == status)
    return list(session.execute(q).scalars())
