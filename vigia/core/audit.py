"""The append-only, hash-chained audit log.

Each record stores the hash of the one before it; the head row holds the last
sequence number and hash, so a deleted tail record is caught as well as a
modified or removed one in the middle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from vigia.core.clock import iso, utcnow
from vigia.core.db import Base, UtcDateTime

GENESIS = "0" * 64


class AuditRecord(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the chain's last sequence number and hash."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


def record_hash(
    prev_hash: str,
    seq: int,
    ts: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any],
) -> str:
    body = orjson.dumps(
        [seq, ts, actor, action, object_type, object_id, detail], option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def append(
    session: Session,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any] | None = None,
) -> AuditRecord:
    """Add one record inside the caller's transaction (so it commits with the change)."""
    detail = detail or {}
    # Bumping the head first takes its row lock (PostgreSQL) or the write lock
    # (SQLite), so concurrent writers queue up instead of forking the chain.
    bumped = session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
    )
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        raise RuntimeError("audit_head row missing: the database was not migrated")
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    session.refresh(head)
    now = utcnow()
    ts = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as stored and hashed
    digest = record_hash(
        head.hash, head.seq, iso(ts), actor, action, object_type, object_id, detail
    )
    record = AuditRecord(
        seq=head.seq,
        ts=ts,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        detail=detail,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(record)
    head.hash = digest
    session.flush()
    return record


@dataclass(frozen=True)
class Verdict:
    ok: bool
    records: int
    problem: str = ""


def verify(session: Session, batch: int = 5000) -> Verdict:
    """Walk the chain; report the first record that was modified, removed or inserted."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    prev, expected, count = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = (
            session.execute(
                select(AuditRecord)
                .where(AuditRecord.seq > last_seq)
                .order_by(AuditRecord.seq)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for r in rows:
            if r.seq != expected:
                return Verdict(False, count, f"record {expected} is missing (next is {r.seq})")
            if r.prev_hash != prev:
                return Verdict(False, count, f"record {r.seq} does not follow record {r.seq - 1}")
            digest = record_hash(
                prev, r.seq, iso(r.ts), r.actor, r.action, r.object_type, r.object_id, r.detail
            )
            if digest != r.hash:
                return Verdict(False, count, f"record {r.seq} was modified")
            prev, expected, count, last_seq = r.hash, r.seq + 1, count + 1, r.seq
        session.expunge_all()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if head_seq != count or head_hash != prev:
        return Verdict(
            False, count, f"records after {count} are missing (chain head is {head_seq})"
        )
    return Verdict(True, count)
