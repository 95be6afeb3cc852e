"""What reports leave behind: each finding (an ECS event, attributed or not) and the
incident that gathers an entity's findings of one report kind on one day."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class ReportFindingRow(Base):
    """One report row as taken in; written in bulk (no ORM object per row on intake).
    De-duplication reads a kind's keys over a time span, so the index is on time, not
    on the (random) key: inserts stay in order."""

    __tablename__ = "report_findings"
    __table_args__ = (Index("ix_report_findings_seen", "kind", "seen_at"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(80))
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime())
    source: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(10))
    # No index of its own: a finding with an entity always has that entity's incident
    # (report_incidents), so its entity's findings are read through incident_id and
    # the unattributed ones as incident_id IS NULL (one index fewer per row written).
    entity_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True, index=True
    )
    ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    value: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(String(200))
    doc: Mapped[dict[str, Any]] = mapped_column(JSON)


class ReportIncidentRow(Base):
    """One incident per entity, report kind and day: later reports of the day join it."""

    __tablename__ = "report_incidents"

    entity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(80), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    severity: Mapped[str] = mapped_column(String(10))
    hosts: Mapped[int] = mapped_column(Integer)
