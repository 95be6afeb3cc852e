"""The sensor fleet as the centre sees it: last heartbeat and counters of each sensor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.clock import utcnow
from core.db import Base, UtcDateTime


class SensorRow(Base):
    __tablename__ = "sensors"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # observer.name
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    counters: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The last refusal the sensor met from the centre ("403 ..."), as of its last
    # heartbeat; None when it has had none since it started.
    last_refusal: Mapped[str | None] = mapped_column(Text, nullable=True)


def record_heartbeat(
    session: Session, name: str, counters: dict[str, int], last_refusal: str | None = None
) -> SensorRow:
    now = utcnow()
    row = session.get(SensorRow, name)
    if row is None:
        row = SensorRow(name=name, first_seen=now, last_seen=now, counters=counters)
        session.add(row)
    else:
        row.last_seen, row.counters = now, counters
    row.last_refusal = last_refusal
    return row


def list_sensors(session: Session) -> list[SensorRow]:
    return list(session.execute(select(SensorRow).order_by(SensorRow.name)).scalars())
