"""An entity's exposure trend: its report findings per ISO week and report kind, and
how many of them were high or critical, over the last weeks (the entity's
certification page shows it beside its assessment)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from incidents.reports.models import ReportFindingRow, ReportIncidentRow

WEEKS = 12
HIGH = ("high", "critical")


def _week(d: date) -> str:
    y, w, _ = d.isocalendar()
    return f"{y:04d}-W{w:02d}"


def weekly(session: Session, entity_id: str, now: datetime, weeks: int = WEEKS) -> dict[str, Any]:
    """{"weeks": [oldest … this one], "kinds": {kind: [count per week]},
    "high": [high or critical per week]}; counted by the database per day."""
    monday = now.date() - timedelta(days=now.weekday())
    first = monday - timedelta(weeks=weeks - 1)
    labels = [_week(first + timedelta(weeks=k)) for k in range(weeks)]
    at = {w: k for k, w in enumerate(labels)}
    day = func.date(ReportFindingRow.seen_at)
    rows = session.execute(
        select(ReportFindingRow.kind, ReportFindingRow.severity, day, func.count())
        .where(
            # Through its incidents (the findings' entity has no index of its own).
            ReportFindingRow.incident_id.in_(
                select(ReportIncidentRow.incident_id).where(
                    ReportIncidentRow.entity_id == entity_id
                )
            ),
            ReportFindingRow.entity_id == entity_id,
            ReportFindingRow.seen_at >= datetime.combine(first, datetime.min.time(), now.tzinfo),
        )
        .group_by(ReportFindingRow.kind, ReportFindingRow.severity, day)
    ).all()
    kinds: dict[str, list[int]] = {}
    high = [0] * weeks
    for kind, severity, d, n in rows:
        when = d if isinstance(d, date) else date.fromisoformat(str(d)[:10])
        k = at.get(_week(when))
        if k is None:
            continue
        kinds.setdefault(kind, [0] * weeks)[k] += n
        if severity in HIGH:
            high[k] += n
    return {"weeks": labels, "kinds": dict(sorted(kinds.items())), "high": high}
