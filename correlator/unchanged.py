"""A source taken in again as it was: known by its content's digest, skipped unread.

An unchanged source would write nothing anyway (correlator.bulkstore compares
every row), but reading, normalising and comparing a million rows takes tens
of seconds. What the last full intake of a source saw is kept in the database
(correlator.syncstate, kind "import"): its SHA-256, the warninglists it was
filtered by, the store's indicator version it left, when it ran, and its
counts. The next intake of the same name skips the source when all of these
still hold:

- the same content (SHA-256) and the same warninglists;
- no indicator added, changed or removed since, by anyone (the version is
  the one it left): another source overwriting a shared row, or an indicator
  deleted, sends it down the full path;
- less than `bulkstore.EXPIRY_SLACK` since that full intake: a default expiry
  moves forward only once it is that old, so the full intake that moves it
  comes at most one slack (a day) later than without the skip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from correlator import bulkstore, syncstate
from correlator.store import IndicatorStore
from rules.sources import LoadResult
from rules.warninglists import Warnings

KIND = "import"
FORMAT = 1  # what a kept state holds: another layout is never matched
_NAME_MAX = 300  # sync_state.name's width


def mark(result: LoadResult, warnings: Warnings | None, name: str) -> dict[str, Any] | None:
    """What must be the same for a skip; None when this source can never be skipped
    (no digest of its content, lists of unknown origin, a name too long to key)."""
    if result.digest is None or len(name) > _NAME_MAX:
        return None
    if warnings is not None and not warnings.mark:
        return None
    return {
        "format": FORMAT,
        "source_format": result.format,
        "sha256": result.digest,
        "warnings": warnings.mark if warnings is not None else None,
    }


def kept(session: Session, name: str) -> bool:
    """Whether a full intake of `name` is kept (a later one may be skipped against it)."""
    return len(name) <= _NAME_MAX and bool(syncstate.get(session, KIND, name))


def may_skip(session: Session, result: LoadResult, name: str) -> bool:
    """Whether this source could be skipped at all (a digest, a name that keys, a full
    intake of it kept): when not, nothing about the warninglists is worth waiting for."""
    return (
        result.digest is not None
        and len(name) <= _NAME_MAX
        and bool(syncstate.get(session, KIND, name))
    )


def last_counts(
    session: Session, name: str, wanted: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """The counts of the last full intake of `name` when this one can skip it, else None."""
    last = syncstate.get(session, KIND, name)
    if not last or last.get("mark") != wanted:
        return None
    if last.get("version") != IndicatorStore.version(session)[0]:
        return None
    if not bulkstore.taken_in_lately(last, now):
        return None
    counts = last.get("counts")
    return counts if isinstance(counts, dict) else None


def remember(
    session: Session, name: str, wanted: dict[str, Any], now: datetime, counts: dict[str, Any]
) -> None:
    """After a full intake, in its transaction: the store's version as it leaves it."""
    state = {
        "mark": wanted,
        "version": IndicatorStore.version(session)[0],
        "at": now.isoformat(),
        "counts": counts,
    }
    syncstate.put(session, KIND, name, state)
