"""Attaching an evidence file to a self-assessment: the one use case behind the
API's upload and the console's form; a new round keeping the evidence of the
round before by reference.

The file is checked, hashed and stored between a read transaction (is the
assessment the caller's?) and a short write one, so no write lock is held while
the bytes are hashed and written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from certification import assessments, evidence
from certification.errors import CertError, CertNotFound
from certification.models import AssessmentRow, EvidenceRow
from core.clock import utcnow
from core.db import Database


@dataclass(frozen=True)
class Upload:
    """An evidence file as the caller sent it (its name already checked)."""

    filename: str
    media_type: str
    data: bytes


@dataclass(frozen=True)
class Limits:
    root: Path  # where evidence files are kept, by SHA-256
    media_types: list[str]
    max_bytes: int


@dataclass(frozen=True)
class Attached:
    id: int
    sha256: str
    size: int
    control_id: str


def attach(
    db: Database,
    limits: Limits,
    assessment_id: int,
    entity_id: str | None,
    control_id: str,
    upload: Upload,
    expires_on: date,
    actor: str,
    replaces: int | None = None,
) -> Attached:
    """Raises CertNotFound (not the entity's assessment, no such control) and
    CertError/CertConflict (the file refused, the assessment locked). With
    `replaces`, that evidence file of the same control goes in the same transaction."""
    with db.transaction(write=False) as session:
        assessments.get(session, assessment_id, entity_id)
    evidence.check(upload.data, upload.media_type, limits.media_types, limits.max_bytes)
    digest = evidence.put(limits.root, upload.data)
    with db.transaction() as session:
        ev = assessments.add_evidence(
            session,
            assessments.get(session, assessment_id, entity_id),
            control_id,
            upload.filename,
            upload.media_type,
            digest,
            len(upload.data),
            expires_on,
            actor,
        )
        if replaces is not None:
            _replace(session, ev, replaces, actor)
        session.flush()
        return Attached(ev.id, digest, len(upload.data), control_id)


def _replace(session: Session, new: EvidenceRow, old_id: int, actor: str) -> None:
    old = session.get(EvidenceRow, old_id)
    if old is None or old.assessment_id != new.assessment_id:
        raise CertNotFound("evidence.not_found", evidence_id=old_id)
    if old.control_id != new.control_id:
        raise CertError("evidence.other_control", evidence_id=old_id)
    assessments.remove_evidence(session, assessments.get(session, new.assessment_id), old_id, actor)


def evidence_file(session: Session, evidence_id: int, entity_id: str | None) -> EvidenceRow | None:
    """An evidence file's record; None when there is none. For an entity caller only
    its own assessment's (CertNotFound otherwise, as for an assessment not there)."""
    ev = session.get(EvidenceRow, evidence_id)
    if ev is not None:
        assessments.get(session, ev.assessment_id, entity_id)
    return ev


def previous_evidence(
    session: Session, a: AssessmentRow, today: date
) -> dict[str, list[EvidenceRow]]:
    """The evidence of the entity's round before this one that is still valid (its
    expiry after today) and not yet kept in this one (the same file on the same
    control), by control: what a new round may keep without uploading again."""
    before = session.execute(
        select(func.max(AssessmentRow.id)).where(
            AssessmentRow.entity_id == a.entity_id, AssessmentRow.id < a.id
        )
    ).scalar()
    if before is None:
        return {}
    held = {(e.control_id, e.sha256) for e in assessments.evidence_of(session, a)}
    q = (
        select(EvidenceRow)
        .where(EvidenceRow.assessment_id == before, EvidenceRow.expires_on > today)
        .order_by(EvidenceRow.id)
    )
    out: dict[str, list[EvidenceRow]] = {}
    for e in session.execute(q).scalars():
        if (e.control_id, e.sha256) not in held:
            out.setdefault(e.control_id, []).append(e)
    return out


def keep_previous(session: Session, a: AssessmentRow, control_id: str, actor: str) -> int:
    """The control's still-valid evidence of the round before, kept in this round by
    reference: a new record of the same stored file (its name, type, size and
    expiry), nothing uploaded or copied. How many were kept."""
    kept = previous_evidence(session, a, utcnow().date()).get(control_id, [])
    for e in kept:
        assessments.add_evidence(
            session, a, control_id, e.filename, e.media_type, e.sha256, e.size, e.expires_on, actor
        )
    return len(kept)
