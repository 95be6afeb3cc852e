"""Incident metrics: time to detect, acknowledge, contain and resolve, SLA breaches,
by entity, priority and RSIT class; the per-incident rows export as CSV."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import csvsafe
from incidents import sla
from incidents.models import IncidentRow
from incidents.views import entities

CLOCKS = ("detect", "acknowledge", "contain", "resolve")


@dataclass(frozen=True)
class IncidentTimes:
    """One incident's durations in seconds (None until that point is reached).

    detect: first traffic seen → incident opened; the others from the opening."""

    incident: int
    entities: str  # ";"-joined, for the CSV
    priority: str
    rsit_class: str
    status: str
    created_at: str
    detect: float | None
    acknowledge: float | None
    contain: float | None
    resolve: float | None
    breaches: str


def _secs(a: datetime | None, b: datetime | None) -> float | None:
    return round((b - a).total_seconds(), 3) if a and b else None


def times(session: Session, since: datetime, until: datetime, now: datetime) -> list[IncidentTimes]:
    q = select(IncidentRow).where(
        IncidentRow.created_at >= since,
        IncidentRow.created_at < until,
        IncidentRow.merged_into.is_(None),
    )
    rows = list(session.execute(q.order_by(IncidentRow.id)).scalars())
    ents = entities(session, [r.id for r in rows])
    out = []
    for r in rows:
        late = sla.late(r, ents[r.id], now)
        out.append(
            IncidentTimes(
                r.id,
                ";".join(e.entity_id for e in ents[r.id]),
                r.priority,
                r.rsit_class or "",
                r.status,
                r.created_at.isoformat(),
                _secs(r.occurred_at, r.created_at),
                _secs(r.created_at, r.acknowledged_at),
                _secs(r.created_at, r.contained_at),
                _secs(r.created_at, r.resolved_at),
                ";".join(f"{b.clock}:{b.entity_id}" if b.entity_id else b.clock for b in late),
            )
        )
    return out


def _stats(rows: Sequence[IncidentTimes]) -> dict[str, Any]:
    out: dict[str, Any] = {"incidents": len(rows)}
    for clock in CLOCKS:
        vals = [v for r in rows if (v := getattr(r, clock)) is not None]
        out[f"{clock}_median_s"] = statistics.median(vals) if vals else None
        out[f"{clock}_mean_s"] = round(statistics.fmean(vals), 3) if vals else None
    out["sla_breaches"] = sum(len(r.breaches.split(";")) for r in rows if r.breaches)
    out["incidents_breached"] = sum(1 for r in rows if r.breaches)
    return out


def summary(rows: list[IncidentTimes]) -> dict[str, Any]:
    def by(key: str) -> dict[str, Any]:
        groups: dict[str, list[IncidentTimes]] = {}
        for r in rows:
            names = r.entities.split(";") if key == "entities" else [getattr(r, key)]
            for name in names or [""]:
                groups.setdefault(name or "-", []).append(r)
        return {k: _stats(v) for k, v in sorted(groups.items())}

    return {
        "overall": _stats(rows),
        "by_entity": by("entities"),
        "by_priority": by("priority"),
        "by_rsit_class": by("rsit_class"),
    }


def to_csv(rows: list[IncidentTimes], label: Callable[[str], str] | None = None) -> str:
    """The per-incident rows; with `label` (a catalogue's `t`), the header, states,
    RSIT classes and breached clocks in that language (csv.inc.*, inc.state.*,
    rsit.*, inc.clock.*), else the codes scripts read."""
    fields = list(IncidentTimes.__dataclass_fields__)
    codes = [f"{f}_s" if f in CLOCKS else f for f in fields]

    def word(family: str, code: str) -> str:
        return label(f"{family}.{code}") if label and code else code

    def row(r: IncidentTimes) -> dict[str, object]:
        d: dict[str, object] = {(f"{k}_s" if k in CLOCKS else k): v for k, v in asdict(r).items()}
        if label:
            d["status"] = word("inc.state", r.status)
            d["rsit_class"] = word("rsit", r.rsit_class)
            d["breaches"] = ";".join(
                word("inc.clock", b.split(":")[0]) for b in r.breaches.split(";") if b
            )
        return d

    if label is None:
        return csvsafe.dicts(codes, (row(r) for r in rows))
    head = [label(f"csv.inc.{c}") for c in codes]
    return csvsafe.dicts(
        head, ({label(f"csv.inc.{k}"): v for k, v in row(r).items()} for r in rows)
    )
