"""Progress to the national target: certified / active registered entities, by level
and state, the monthly trend, a forecast at the current pace, and the entities
closest to certification. Three queries, whatever the size of the registry."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification.certificates import STATES, state_of
from certification.models import AssessmentRow, CertificateRow
from certification.registry import LEVELS, EntityRow
from core import csvsafe

TARGET = 0.6
CERTIFIED = ("certified", "conditional")
PACE_MONTHS = 6  # the pace is the average monthly gain over this many months


@dataclass(frozen=True)
class EntityState:
    id: str
    name: str
    level: str
    state: str
    score: float | None
    progress: float
    certificate: str | None
    valid_until: datetime | None


def _month_ends(now: datetime, n: int) -> list[tuple[str, datetime]]:
    """(month, the instant its figures are read at) for the last n months; this month
    is read now, earlier ones at their last instant (the next month's first)."""
    out, y, m = [(f"{now.year:04d}-{now.month:02d}", now)], now.year, now.month
    for _ in range(n - 1):
        end = datetime(y, m, 1, tzinfo=UTC)
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
        out.append((f"{y:04d}-{m:02d}", end))
    return out[::-1]


def _span(c: Any) -> tuple[str, datetime, datetime]:
    """(entity, from, to): when a certificate was in force; revoked, suspended and
    renewed ones end when that happened."""
    end = c.valid_until
    if c.status in ("revoked", "suspended", "expired") and c.updated_at < end:
        end = c.updated_at
    return c.entity_id, c.issued_at, end


def states(
    session: Session, now: datetime
) -> tuple[list[EntityState], list[tuple[str, datetime, datetime]], dict[str, datetime]]:
    """Each active entity's state; the spans of all certificates; the active entities'
    registration times. Plain rows, not ORM objects: this runs on every dashboard load."""
    entities = session.execute(
        select(
            EntityRow.id, EntityRow.name, EntityRow.level, EntityRow.active, EntityRow.created_at
        ).order_by(EntityRow.id)
    ).all()
    certs = session.execute(
        select(
            CertificateRow.id,
            CertificateRow.entity_id,
            CertificateRow.level,
            CertificateRow.status,
            CertificateRow.issued_at,
            CertificateRow.valid_until,
            CertificateRow.updated_at,
        ).order_by(CertificateRow.issued_at)
    ).all()
    newest_cert = {c.entity_id: c for c in certs}
    newest = {
        a.entity_id: a
        for a in session.execute(
            select(
                AssessmentRow.entity_id,
                AssessmentRow.status,
                AssessmentRow.score,
                AssessmentRow.progress,
            ).order_by(AssessmentRow.id)
        )
    }
    out = []
    for e in entities:
        if not e.active:
            continue
        c, a = newest_cert.get(e.id), newest.get(e.id)
        out.append(
            EntityState(
                e.id,
                e.name,
                e.level,
                state_of(c, a, now),
                a.score if a else None,
                a.progress if a else 0.0,
                c.id if c else None,
                c.valid_until if c else None,
            )
        )
    active = {e.id: e.created_at for e in entities if e.active}
    return out, [_span(c) for c in certs], active


def progress(session: Session, now: datetime, target: float = TARGET) -> dict[str, Any]:
    rows, spans, active = states(session, now)
    total = len(rows)
    certified = sum(1 for r in rows if r.state in CERTIFIED)
    by_level = {}
    for level in LEVELS:
        mine = [r for r in rows if r.level == level]
        if mine:
            n = sum(1 for r in mine if r.state in CERTIFIED)
            by_level[level] = {"certified": n, "total": len(mine), "ratio": round(n / len(mine), 4)}
    by_state = {s: sum(1 for r in rows if r.state == s) for s in STATES}
    spans = [sp for sp in spans if sp[0] in active]
    trend: list[dict[str, Any]] = []
    for month, t in _month_ends(now, 12):
        covered = {e for e, start, end in spans if start <= t < end}
        present = sum(1 for created in active.values() if created <= t)
        trend.append(
            {
                "month": month,
                "certified": len(covered),
                "total": present,
                "ratio": round(len(covered) / present, 4) if present else 0.0,
            }
        )
    pace = (trend[-1]["certified"] - trend[-1 - PACE_MONTHS]["certified"]) / PACE_MONTHS
    needed = math.ceil(target * total) - certified
    forecast: dict[str, Any] = {"pace_per_month": round(pace, 2), "reached": needed <= 0}
    if needed > 0 and pace > 0:
        months = math.ceil(needed / pace)
        y, m = divmod(now.month - 1 + months, 12)
        forecast["month"] = f"{now.year + y:04d}-{m + 1:02d}"
        forecast["months"] = months
    else:
        forecast["month"] = None
    waiting = [r for r in rows if r.state not in CERTIFIED]
    waiting.sort(key=lambda r: (-(r.score if r.score is not None else -1), -r.progress, r.id))
    return {
        "target": target,
        "certified": certified,
        "total": total,
        "ratio": round(certified / total, 4) if total else 0.0,
        "needed": max(needed, 0),
        "by_level": by_level,
        "by_state": by_state,
        "trend": trend,
        "forecast": forecast,
        "closest": [
            {"id": r.id, "name": r.name, "state": r.state, "score": r.score, "progress": r.progress}
            for r in waiting[:10]
        ],
    }


CSV_COLUMNS = (
    "entity",
    "name",
    "level",
    "state",
    "score",
    "progress",
    "certificate",
    "valid_until",
)


def to_csv(rows: list[EntityState], label: Callable[[str], str] | None = None) -> str:
    """One row per entity; with `label` (a catalogue's `t`), the header, levels and
    states in that language (csv.*, level.*, cert.state.*), else the codes."""
    say = label or (lambda key: key.rsplit(".", 1)[-1])
    return csvsafe.rows(
        [say(f"csv.{c}") for c in CSV_COLUMNS],
        (
            [
                r.id,
                r.name,
                say(f"level.{r.level}"),
                say(f"cert.state.{r.state}"),
                "" if r.score is None else r.score,
                r.progress,
                r.certificate or "",
                r.valid_until.isoformat() if r.valid_until else "",
            ]
            for r in rows
        ),
    )
