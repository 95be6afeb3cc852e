"""The append-only, keyed, hash-chained audit log.

Each record stores the digest of the one before it; the head row holds the last
sequence number and digest, so a deleted tail record is caught as well as a
modified or removed one in the middle. Digests are HMAC-SHA256 under a key
derived from the installation's secret (`core.keys`), which lives outside
the database: someone who can write the database but not read the secret cannot
recompute a record's digest after changing it. What such a writer can still do
is cut the chain's tail and rewind the head to an earlier record; an anchor (the
head's `seq:digest`, kept elsewhere by the operator, see `vigia audit anchor`)
catches that.

Chains written before the key existed keep their plain SHA-256 records: the
first start after the upgrade appends an `audit.keyed` record, keyed, whose
digest covers the plain chain's head, so the old records are sealed by it and
verified the old way up to it. A chain with no keyed record at all is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import keys
from core.clock import iso, utcnow
from core.db import Base, UtcDateTime

GENESIS = "0" * 64
KEYED_ACTION = "audit.keyed"
_BATCH = "audit.batch"  # session.info: the records a `batched` block holds back


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
    key: bytes | None,
) -> str:
    """HMAC-SHA256 under `key`; plain SHA-256 (records before keying) when key is None."""
    body = orjson.dumps(
        [seq, ts, actor, action, object_type, object_id, detail], option=orjson.OPT_SORT_KEYS
    )
    if key is None:
        return hashlib.sha256(prev_hash.encode() + body).hexdigest()
    return hmac.new(key, prev_hash.encode() + body, hashlib.sha256).hexdigest()


def _digest(r: AuditRecord, prev: str, key: bytes | None) -> str:
    return record_hash(
        prev, r.seq, iso(r.ts), r.actor, r.action, r.object_type, r.object_id, r.detail, key
    )


def append(
    session: Session,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any] | None = None,
) -> AuditRecord:
    """Add one record inside the caller's transaction (so it commits with the change).
    Inside `batched`, the record is chained and written when the batch ends."""
    now = utcnow()
    record = AuditRecord(
        ts=now.replace(microsecond=now.microsecond // 1000 * 1000),  # as stored and hashed
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        detail=detail or {},
    )
    pending = session.info.get(_BATCH)
    if pending is not None:
        pending.append(record)
    else:
        _chain(session, [record])
    return record


@contextmanager
def batched(session: Session) -> Iterator[None]:
    """The records appended inside are chained and written together when the block
    ends (one bump of the head, one flush): every change still gets its own record, in
    the order made and in the caller's transaction. An exception inside drops them with
    the transaction it rolls back. Nested batches write with the outermost."""
    if _BATCH in session.info:
        yield
        return
    pending: list[AuditRecord] = []
    session.info[_BATCH] = pending
    try:
        yield
    finally:
        del session.info[_BATCH]
    if pending:
        _chain(session, pending)


def _chain(session: Session, records: list[AuditRecord]) -> None:
    """Number, link and add the records after the chain's head."""
    key = keys.of(session).audit
    # Bumping the head first takes its row lock (PostgreSQL) or the write lock
    # (SQLite), so concurrent writers queue up instead of forking the chain.
    bumped = session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + len(records))
    )
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        raise RuntimeError("audit_head row missing: the database was not migrated")
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    session.refresh(head)
    seq, prev = head.seq - len(records), head.hash
    for r in records:
        seq += 1
        r.seq, r.prev_hash = seq, prev
        r.hash = prev = record_hash(
            prev, seq, iso(r.ts), r.actor, r.action, r.object_type, r.object_id, r.detail, key
        )
    session.add_all(records)
    head.hash = prev
    session.flush()


def ensure_keyed(session: Session) -> bool:
    """After an upgrade, seal a chain of plain SHA-256 records with one keyed
    `audit.keyed` record (its digest covers theirs). True when one was added."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is None or head.seq == 0:
        return False
    last = session.get(AuditRecord, head.seq)
    if last is not None and _digest(last, last.prev_hash, keys.of(session).audit) == last.hash:
        return False
    append(session, "system:upgrade", KEYED_ACTION, "audit", str(head.seq), {"legacy": head.seq})
    return True


@dataclass(frozen=True)
class Anchor:
    """A chain head written down elsewhere: record `seq` had digest `digest`."""

    seq: int
    digest: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.digest}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        m = re.fullmatch(r"\s*(\d{1,12}):([0-9a-f]{64})\s*", text.lower())
        if not m:
            raise ValueError("an anchor is SEQ:DIGEST, as `vigia audit anchor` prints it")
        return cls(int(m[1]), m[2])


def anchor(session: Session) -> Anchor:
    """The chain's head as it stands, to be kept outside this installation."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    return Anchor(head.seq, head.hash) if head else Anchor(0, GENESIS)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    records: int
    problem: str = ""
    legacy: int = 0  # records from before keying, checked by plain SHA-256


def verify(
    session: Session,
    batch: int = 5000,
    against: Anchor | None = None,
    allow_unkeyed: bool = False,
) -> Verdict:
    """Walk the chain; report the first record that was modified, removed or inserted,
    and, given an anchor, whether the chain still holds that head. `allow_unkeyed`
    accepts a chain wholly from before keying (a restore of an old backup, sealed by
    `ensure_keyed` at the next start)."""
    key = keys.of(session).audit
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    prev, expected, count, legacy, keyed = GENESIS, 1, 0, 0, False
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
            if _digest(r, prev, key) == r.hash:
                keyed = True  # from the first keyed record on, every record must be keyed
            elif not keyed and _digest(r, prev, None) == r.hash:
                legacy += 1
            else:
                return Verdict(False, count, f"record {r.seq} was modified")
            if against is not None and r.seq == against.seq and r.hash != against.digest:
                return Verdict(
                    False, count, f"record {r.seq} differs from the anchor: history was rewritten"
                )
            prev, expected, count, last_seq = r.hash, r.seq + 1, count + 1, r.seq
        session.expunge_all()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if head_seq != count or head_hash != prev:
        return Verdict(
            False, count, f"records after {count} are missing (chain head is {head_seq})"
        )
    if count and not keyed and not allow_unkeyed:
        return Verdict(False, count, "no record is keyed: the chain was rewritten without the key")
    if against is not None and against.seq > count:
        return Verdict(
            False,
            count,
            f"the chain ends at record {count}, before the anchor's record {against.seq}: "
            "records were cut",
        )
    if against is not None and against.seq == 0 and against.digest != GENESIS:
        return Verdict(False, count, "the anchor is not a head of this chain")
    return Verdict(True, count, legacy=legacy)
