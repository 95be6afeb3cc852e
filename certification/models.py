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
