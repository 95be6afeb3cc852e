"""A synthetic constituency with known outcomes, for the progress tests and the
benchmark: entity i's state follows i mod 20, and its certificate (if any) was
issued (i mod 12) × 30 days ago; from entity 100 on, each belongs to one of nine
departments (its parent, a departmental entity among the first hundred). Rows
are written directly, without audit records: this is test and benchmark data,
never a real registry."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from certification.models import AssessmentRow, CertificateRow
from certification.registry import LEVELS, EntityRow

# i mod 20 → state; 9 certified + 2 conditional in 20: 55 % certified.
OUTCOMES = (
    ["certified"] * 9
    + ["conditional"] * 2
    + ["expired", "revoked", "suspended", "in_review", "submitted"]
    + ["in_progress"] * 2
    + ["not_started"] * 2
)
WITH_CERTIFICATE = ("certified", "conditional", "expired", "revoked", "suspended")


DEPARTMENTS = 9  # entities 1, 11, … 81 (departmental level): the country's departments


def _department(i: int) -> str | None:
    """From entity 100 on, each hangs from one of the departments in turn."""
    return f"ent-{(i % DEPARTMENTS) * 10 + 1:05d}" if i >= 100 else None


def issued_at(i: int, now: datetime) -> datetime:
    return now - timedelta(days=30 * (i % 12) + 1)


def constituency(session: Session, n: int, now: datetime, catalogue_version: str) -> None:
    entities, assessments, certs = [], [], []
    for i in range(n):
        eid, outcome = f"ent-{i:05d}", OUTCOMES[i % 20]
        entities.append(
            EntityRow(
                id=eid,
                name=f"Entidad {i}",
                level=LEVELS[i % len(LEVELS)],
                networks=[],
                domains=[],
                parent_id=_department(i),
                contacts=[],
                webhook_url="",
                webhook_secret="",
                active=True,
                created_at=now - timedelta(days=400),
                updated_at=now - timedelta(days=400),
            )
        )
        if outcome == "not_started":
            continue
        a = AssessmentRow(
            id=i + 1,
            entity_id=eid,
            catalogue_version=catalogue_version,
            status="decided" if outcome in WITH_CERTIFICATE else outcome,
            decision_reasons=[],
            score=round(0.5 + (i % 50) / 100, 4),
            progress=1.0 if outcome != "in_progress" else 0.5,
            created_at=now - timedelta(days=30),
            updated_at=now - timedelta(days=30),
        )
        assessments.append(a)
        if outcome in WITH_CERTIFICATE:
            start = issued_at(i, now)
            level = "conditional" if outcome == "conditional" else "certified"
            until = start + timedelta(days=365)
            status = "valid" if outcome in ("certified", "conditional") else outcome
            if outcome == "expired":
                start, until = now - timedelta(days=400), now - timedelta(days=35)
            certs.append(
                CertificateRow(
                    id=f"VIG-TEST-{i:05d}",
                    entity_id=eid,
                    assessment_id=i + 1,
                    level=level,
                    status=status,
                    score=0.9,
                    issued_at=start,
                    valid_until=until,
                    observation="",
                    reason="",
                    reminders=[],
                    updated_at=now - timedelta(days=1)
                    if status in ("revoked", "suspended")
                    else start,
                )
            )
    session.add_all(entities)
    session.flush()
    session.add_all(assessments)
    session.flush()
    session.add_all(certs)
    session.flush()
