"""Progress to the national target: certified / active registered entities, by level,
department and state, the monthly trend, a forecast at the current pace (and the
pace a chosen day needs), the entities closest to certification and those whose
certificate ends soon. The figures are counted by the database
(progress_query); `states` reads one row per entity, for the CSV."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import progress_query
from certification.certificates import STATES, state_of
from certification.models import AssessmentRow, CertificateRow
from certification.registry import LEVELS, EntityRow
from core import csvsafe

TARGET = 0.6
CERTIFIED = ("certified", "conditional")
PACE_MONTHS = 6  # the pace is the average monthly gain over this many months
PROJECTION_MONTHS = 36
EXPIRING_DAYS = 60
EXPIRING_LIST = 50
DAYS_PER_MONTH = 30.44
PLAN_KEYS = ("by", "months_to_by", "pace_needed")


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


def _months_between(now: datetime, when: date) -> float:
    return (when - now.date()).days / DAYS_PER_MONTH


def _add_months(now: datetime, months: int) -> str:
    y, m = divmod(now.month - 1 + months, 12)
    return f"{now.year + y:04d}-{m + 1:02d}"


def _forecast(
    now: datetime, trend: list[dict[str, Any]], certified: int, total: int, target: float
) -> dict[str, Any]:
    """When the target is reached at the pace of the last PACE_MONTHS months."""
    pace = (trend[-1]["certified"] - trend[-1 - PACE_MONTHS]["certified"]) / PACE_MONTHS
    needed = math.ceil(target * total) - certified
    out: dict[str, Any] = {"pace_per_month": round(pace, 2), "reached": needed <= 0, "month": None}
    if needed > 0 and pace > 0:
        months = math.ceil(needed / pace)
        out["month"], out["months"] = _add_months(now, months), months
    return out


def plan(p: dict[str, Any], now: datetime, by: date | None) -> dict[str, Any]:
    """`p` (what `progress` returns without a day) with the monthly pace that reaches
    the target on `by` (forecast.by, months_to_by, pace_needed: None when `by` is not
    in the future) and the projection; a new dict, `p` is left as it was."""
    forecast = {k: v for k, v in p["forecast"].items() if k not in PLAN_KEYS}
    if by is not None:
        span = _months_between(now, by)
        forecast["by"] = by.isoformat()
        forecast["months_to_by"] = round(span, 1)
        forecast["pace_needed"] = round(p["needed"] / span, 2) if span > 0 else None
    projection = _projection(now, p["certified"], p["total"], forecast, p["target"])
    return {**p, "forecast": forecast, "projection": projection}


def _projection(
    now: datetime, certified: int, total: int, forecast: dict[str, Any], target: float
) -> list[dict[str, Any]]:
    """Month by month from now: the certified count at the current pace and at the
    pace needed by the chosen day, until both reach the target (36 months at most)."""
    goal = math.ceil(target * total)
    pace, needed = forecast["pace_per_month"], forecast.get("pace_needed")
    horizon = max(forecast.get("months") or 0, math.ceil(forecast.get("months_to_by") or 0), 1)
    out = []
    for k in range(min(horizon, PROJECTION_MONTHS) + 1):
        row = {"month": _add_months(now, k), "current": round(min(certified + pace * k, total), 1)}
        if needed is not None:
            row["needed"] = round(min(certified + needed * k, max(goal, certified)), 1)
        out.append(row)
    return out


def _share(n: int, of: int) -> dict[str, Any]:
    return {"certified": n, "total": of, "ratio": round(n / of, 4) if of else 0.0}


def progress(
    session: Session,
    now: datetime,
    target: float = TARGET,
    by: date | None = None,
    expiring_days: int = EXPIRING_DAYS,
) -> dict[str, Any]:
    """The figures of the national view, counted by the database
    (certification.progress_query): by level, department and state, the last twelve
    months, the forecast, the entities closest to certification and those whose
    certificate ends within `expiring_days`."""
    tallies = progress_query.tallies(session, now)
    total = sum(t.n for t in tallies)
    certified = sum(t.n for t in tallies if t.state in CERTIFIED)
    by_level = {}
    for level in LEVELS:
        mine = [t for t in tallies if t.level == level]
        if mine:
            by_level[level] = _share(
                sum(t.n for t in mine if t.state in CERTIFIED), sum(t.n for t in mine)
            )
    names = progress_query.department_names(session, {t.department for t in tallies})
    depts: dict[str, list[int]] = {}
    for t in tallies:
        d = depts.setdefault(t.department or "", [0, 0])
        d[0] += t.n if t.state in CERTIFIED else 0
        d[1] += t.n
    by_department = {
        k: {"name": names.get(k, ""), **_share(n, of)}
        for k, (n, of) in sorted(depts.items(), key=lambda kv: (kv[0] == "", names.get(kv[0], "")))
    }
    by_state = {s: sum(t.n for t in tallies if t.state == s) for s in STATES}
    months = _month_ends(now, 12)
    counts = progress_query.monthly(session, [t for _, t in months])
    trend = [
        {"month": month, **_share(n, of)}
        for (month, _), (n, of) in zip(months, counts, strict=True)
    ]
    forecast = _forecast(now, trend, certified, total, target)
    soon = now + timedelta(days=expiring_days)
    return plan(
        {
            "target": target,
            "certified": certified,
            "total": total,
            "ratio": round(certified / total, 4) if total else 0.0,
            "needed": max(math.ceil(target * total) - certified, 0),
            "by_level": by_level,
            "by_department": by_department,
            "by_state": by_state,
            "trend": trend,
            "forecast": forecast,
            "closest": [
                {
                    "id": r.id,
                    "name": r.name,
                    "state": r.state,
                    "score": r.score,
                    "progress": r.progress,
                }
                for r in progress_query.closest(session, now, CERTIFIED, 10)
            ],
            "expiring_days": expiring_days,
            "expiring": [
                {
                    "id": r.id,
                    "name": r.name,
                    "level": r.level,
                    "certificate": r.certificate,
                    "state": r.cert_level,
                    "valid_until": r.valid_until.isoformat(),
                    "days_left": (r.valid_until - now).days,
                }
                for r in progress_query.expiring(session, now, soon, EXPIRING_LIST)
            ],
        },
        now,
        by,
    )


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
