"""Where each indicator source's sync stands, kept in the database so that every
replica (each with its own data directory) continues from the same point: a MISP
server's last event timestamp, a feed's last taken-in digest and validators.

One row per (kind, source); written in the transaction that takes the source in,
so the point moves only when what it covers is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.clock import utcnow
from core.db import Base, UtcDateTime


class SyncStateRow(Base):
    __tablename__ = "sync_state"

    kind: Mapped[str] = mapped_column(String(30), primary_key=True)  # misp-sync | feed
    name: Mapped[str] = mapped_column(String(300), primary_key=True)  # server URL, feed
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


def get(session: Session, kind: str, name: str) -> dict[str, Any]:
    """The source's state, empty when it never synced."""
    row = session.get(SyncStateRow, (kind, name))
    return dict(row.state) if row else {}


def put(session: Session, kind: str, name: str, state: dict[str, Any]) -> None:
    row = session.get(SyncStateRow, (kind, name))
    if row is None:
        session.add(SyncStateRow(kind=kind, name=name, state=state, updated_at=utcnow()))
    else:
        row.state, row.updated_at = state, utcnow()
