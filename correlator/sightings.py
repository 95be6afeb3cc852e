"""Sightings back to MISP: confirmed hits, and false positives when an analyst says so.

Triage writes them to an outbox in the same transaction as the status change;
a job delivers the outbox through pymisp and retries what fails, so a MISP
that is down loses nothing and slows nobody.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.clock import utcnow
from core.db import Base, UtcDateTime

SIGHTING = "0"  # MISP sighting types
FALSE_POSITIVE = "1"
MAX_ATTEMPTS = 20


class SightingRow(Base):
    __tablename__ = "sightings_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(32), index=True)
    value: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)


def enqueue(session: Session, alert_id: str, alert: dict[str, Any], kind: str) -> int:
    """One sighting per indicator of the alert (YARA rules are not MISP attributes)."""
    values = {
        e["indicator"]["value"]
        for e in alert["threat"]["enrichments"]
        if e["matched"]["type"] == "indicator_match"
    }
    for value in sorted(values):
        session.add(
            SightingRow(
                alert_id=alert_id,
                value=value,
                type=kind,
                created_at=utcnow(),
                attempts=0,
                last_error="",
            )
        )
    return len(values)


def pending(session: Session, limit: int = 500) -> list[SightingRow]:
    return list(
        session.execute(
            select(SightingRow)
            .where(SightingRow.sent_at.is_(None), SightingRow.attempts < MAX_ATTEMPTS)
            .order_by(SightingRow.id)
            .limit(limit)
        ).scalars()
    )


def deliver(session: Session, send: Callable[[str, str], None]) -> tuple[int, int]:
    """Send what is pending with `send(value, type)`; returns (sent, failed)."""
    sent = failed = 0
    for row in pending(session):
        try:
            send(row.value, row.type)
        except Exception as exc:  # any failure: keep it for the next run
            row.attempts += 1
            row.last_error = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
            failed += 1
            continue
        row.sent_at = utcnow()
        row.attempts += 1
        sent += 1
    return sent, failed
