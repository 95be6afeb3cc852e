"""Certification records: catalogue versions, assessments with their answers and
evidence, and certificates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class CatalogueRow(Base):
    """One version of the control catalogue, as validated from its YAML."""

    __tablename__ = "catalogues"

    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    doc: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    current: Mapped[bool] = mapped_column(Boolean)  # new assessments use the current one


class AssessmentRow(Base):
    """An entity's self-assessment against one catalogue version."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    catalogue_version: Mapped[str] = mapped_column(ForeignKey("catalogues.version"))
    # in_progress → submitted → in_review → (returned → submitted …) → decided
    status: Mapped[str] = mapped_column(String(20), index=True)
    decision: Mapped[str | None] = mapped_column(String(20), nullable=True)
    decision_reasons: Mapped[list[str]] = mapped_column(JSON)
    # Kept up to date on every answer, for the progress figures (scoring.py says how).
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    progress: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AnswerRow(Base):
    """The entity's answer to one control, and the CERT's verdict on it."""

    __tablename__ = "assessment_answers"

    assessment_id: Mapped[int] = mapped_column(
        ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True
    )
    control_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    answer: Mapped[str] = mapped_column(
        String(20)
    )  # implemented | partial | not_implemented | not_applicable
    justification: Mapped[str] = mapped_column(Text)
    review: Mapped[str | None] = mapped_column(String(10), nullable=True)  # accepted | rejected
    review_comment: Mapped[str] = mapped_column(Text)
    reviewed_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class EvidenceRow(Base):
    """A file backing an answer, stored once by its SHA-256 under the data dir."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    assessment_id: Mapped[int] = mapped_column(
        ForeignKey("assessments.id", ondelete="CASCADE"), index=True
    )
    control_id: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(300))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    expires_on: Mapped[date] = mapped_column(Date)
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    uploaded_by: Mapped[str] = mapped_column(String(200))


class CertificateRow(Base):
    """A certificate the CERT issued to an entity; its id is what the public verifies."""

    __tablename__ = "certificates"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"))
    level: Mapped[str] = mapped_column(String(20))  # certified | conditional
    status: Mapped[str] = mapped_column(
        String(20), index=True
    )  # valid | expired | suspended | revoked
    score: Mapped[float] = mapped_column(Float)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    valid_until: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    observation: Mapped[str] = mapped_column(Text)  # why it is under observation; "" if not
    reason: Mapped[str] = mapped_column(Text)  # of a suspension or revocation
    reminders: Mapped[list[int]] = mapped_column(JSON)  # days-before-expiry already reminded
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ProgressSnapshotRow(Base):
    """The progress figures as they stood on a day: the record of what was reported,
    which the registry of today (entities added, deactivated) cannot rebuild."""

    __tablename__ = "progress_snapshots"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(UtcDateTime())
    target: Mapped[float] = mapped_column(Float)
    certified: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    ratio: Mapped[float] = mapped_column(Float)
    by_level: Mapped[dict[str, Any]] = mapped_column(JSON)


class CertStateRow(Base):
    """Each entity's certification as the national figures count it, kept up to date
    on every flush that touches the entity, its certificates or its assessments
    (certification.progress_state): the figures after a change are an aggregate
    over this table, not a join of the registry with every certificate and
    assessment. Validity is stored, never the state at some instant: the state is
    worked out in the query with the reader's clock, so a certificate that lapsed
    overnight counts as expired without any write."""

    __tablename__ = "certification_state"

    entity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    level: Mapped[str] = mapped_column(String(30))  # the entity's government level
    # The highest departmental entity among itself, its parent and grandparent.
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The newest certificate (by issue time) and the newest assessment (by id).
    certificate_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    cert_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    cert_level: Mapped[str | None] = mapped_column(String(20), nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    assessment_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    progress: Mapped[float | None] = mapped_column(Float, nullable=True)
    # When its certificates kept it covered (progress._span, overlapping spans merged):
    # the first days of the months it was covered on ("2026-05-01"), what it adds to
    # certification_trend; and the latest covering stretch, for the count at any instant.
    months: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    cover_from: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    cover_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class CertTrendRow(Base):
    """The active entities covered by a certificate in force, and those registered, at
    the first instant (00:00 UTC) of each month: the national trend, kept as counts
    with certification_state (`registered` holds the entities first counted at this
    month's start; the registry at a month's start is the sum up to it)."""

    __tablename__ = "certification_trend"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    covered: Mapped[int] = mapped_column(Integer)
    registered: Mapped[int] = mapped_column(Integer)
