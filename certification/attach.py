"""Attaching an evidence file to a self-assessment: the one use case behind the
API's upload and the console's form.

The file is checked, hashed and stored between a read transaction (is the
assessment the caller's?) and a short write one, so no write lock is held while
the bytes are hashed and written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy.orm import Session

from certification import assessments, evidence
from certification.models import EvidenceRow
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
) -> Attached:
    """Raises CertNotFound (not the entity's assessment, no such control) and
    CertError/CertConflict (the file refused, the assessment locked)."""
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
        session.flush()
        return Attached(ev.id, digest, len(upload.data), control_id)


def evidence_file(session: Session, evidence_id: int, entity_id: str | None) -> EvidenceRow | None:
    """An evidence file's record; None when there is none. For an entity caller only
    its own assessment's (CertNotFound otherwise, as for an assessment not there)."""
    ev = session.get(EvidenceRow, evidence_id)
    if ev is not None:
        assessments.get(session, ev.assessment_id, entity_id)
    return ev
