"""Indicator sources as the centre sees them: each run's outcome, kept per source.

Every intake (an upload, `vigia indicators import`, a MISP sync, by hand or
on schedule) records how it went: when, whether it worked, what it gave —
so an analyst can tell a quiet feed from a broken one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.clock import utcnow
from core.db import Base, UtcDateTime


class SourceRow(Base):
    __tablename__ = "indicator_sources"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # misp-sync, misp-event, stix, csv...
    last_run: Mapped[datetime] = mapped_column(UtcDateTime())
    last_ok: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(10))  # ok | error
    message: Mapped[str] = mapped_column(Text)
    counters: Mapped[dict[str, Any]] = mapped_column(JSON)


def record(
    session: Session,
    name: str,
    kind: str,
    ok: bool,
    message: str = "",
    counters: dict[str, Any] | None = None,
) -> SourceRow:
    now = utcnow()
    row = session.get(SourceRow, name)
    if row is None:
        row = SourceRow(
            name=name, kind=kind, last_run=now, last_ok=None, status="", message="", counters={}
        )
        session.add(row)
    row.kind, row.last_run, row.status, row.message = kind, now, "ok" if ok else "error", message
    if ok:
        row.last_ok = now
        row.counters = counters or {}
    return row


def unchanged(session: Session, name: str, kind: str) -> SourceRow:
    """A run that found the source as it was last taken in: ok, its counters kept."""
    row = session.get(SourceRow, name)
    counters = dict(row.counters) if row is not None else {}
    return record(session, name, row.kind if row else kind, True, "unchanged", counters)


def all_sources(session: Session) -> list[SourceRow]:
    return list(session.execute(select(SourceRow).order_by(SourceRow.name)).scalars())
