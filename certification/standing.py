"""Where an entity stands: its newest certificate and assessment, the assessments
waiting for the CERT's review, and the public verification of a certificate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification.models import AssessmentRow, CertificateRow
from certification.registry import Registry


def newest_certificate(session: Session, entity_id: str) -> CertificateRow | None:
    q = select(CertificateRow).where(CertificateRow.entity_id == entity_id)
    return session.execute(q.order_by(CertificateRow.issued_at.desc())).scalars().first()


def newest_assessment(session: Session, entity_id: str) -> AssessmentRow | None:
    q = select(AssessmentRow).where(AssessmentRow.entity_id == entity_id)
    return session.execute(q.order_by(AssessmentRow.id.desc())).scalars().first()


def awaiting_review(session: Session) -> list[AssessmentRow]:
    """Submitted or in review, the longest waiting first."""
    q = select(AssessmentRow).where(AssessmentRow.status.in_(("submitted", "in_review")))
    return list(session.execute(q.order_by(AssessmentRow.submitted_at)).scalars())


@dataclass(frozen=True)
class Verification:
    """What anyone holding a certificate's id may learn of it."""

    certificate: CertificateRow
    entity_name: str
    in_force: bool

    @property
    def status(self) -> str:
        """`expired` for a valid certificate past its date."""
        c = self.certificate
        return c.status if c.status != "valid" or self.in_force else "expired"


def verify(session: Session, cert_id: str, now: datetime) -> Verification | None:
    c = session.get(CertificateRow, cert_id[:40])
    if c is None:
        return None
    entity = Registry.get(session, c.entity_id)
    in_force = c.status == "valid" and c.valid_until > now
    return Verification(c, entity.name if entity else c.entity_id, in_force)


def certificate_of(session: Session, assessment_id: int) -> CertificateRow | None:
    """The certificate an assessment's decision issued, if it issued one."""
    q = select(CertificateRow).where(CertificateRow.assessment_id == assessment_id)
    return session.execute(q).scalars().first()
