"""Daily snapshots of the progress to the national target.

The scheduler takes one a day (on one replica); taking it again the same day
replaces that day's figures, so a rerun or a manual run is harmless.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import progress, progress_state
from certification.models import ProgressSnapshotRow


def take(session: Session, now: datetime) -> ProgressSnapshotRow:
    """Record today's figures (UTC day), replacing any taken earlier today. The
    per-entity state is rewritten from the tables first, once a day: what plain SQL
    changed behind the ORM (progress_state follows ORM flushes only) is counted."""
    progress_state.rebuild(session.connection())
    figures = progress.progress(session, now)
    by_level = {
        k: {"certified": v["certified"], "total": v["total"]}
        for k, v in figures["by_level"].items()
    }
    row = session.get(ProgressSnapshotRow, now.date())
    if row is None:
        row = ProgressSnapshotRow(day=now.date())
        session.add(row)
    row.taken_at = now
    row.target = figures["target"]
    row.certified = figures["certified"]
    row.total = figures["total"]
    row.ratio = figures["ratio"]
    row.by_level = by_level
    return row


def history(session: Session, since: date | None = None) -> list[dict[str, Any]]:
    """The snapshots, oldest first."""
    q = select(ProgressSnapshotRow).order_by(ProgressSnapshotRow.day)
    if since is not None:
        q = q.where(ProgressSnapshotRow.day >= since)
    return [
        {
            "day": r.day.isoformat(),
            "target": r.target,
            "certified": r.certified,
            "total": r.total,
            "ratio": r.ratio,
            "by_level": r.by_level,
        }
        for r in session.execute(q).scalars()
    ]
