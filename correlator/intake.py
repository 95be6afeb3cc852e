"""Taking in an indicator source: store it, hunt the new ones back in time, audit it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from correlator import bulkstore, sources
from correlator.alerts import EntityLookup
from correlator.retrohunt import HuntResult, Stored, retro_hunt
from rules.sources import LoadResult
from rules.warninglists import Warnings


@dataclass(frozen=True)
class Intake:
    loaded: int
    new: int
    hunt: HuntResult


class TakeIn(Protocol):
    """An indicator source into the store with the installation's settings (warninglists,
    retro-hunt depth, dedup window, the constituency): what the sync and feed use cases
    are given (`api.services.Services.take_in`), not the whole container."""

    def __call__(
        self, session: Session, result: LoadResult, actor: str, source_name: str | None = None
    ) -> Intake: ...


def take_in(
    session: Session,
    result: LoadResult,
    actor: str,
    retro_days: int,
    window_s: int,
    entity_of: EntityLookup | None = None,
    source_name: str | None = None,
    warnings: Warnings | None = None,
    stored: Stored | None = None,
) -> Intake:
    if warnings is not None:
        warnings.apply(result)  # what the lists catch is counted in result.skipped
    # In bulk: new and changed rows only (default expiries set there, per type).
    written = bulkstore.write(session, result.indicators, utcnow())
    fresh = [result.indicators[p] for p in written.fresh]
    hunt = retro_hunt(session, fresh, retro_days, window_s, entity_of, stored)
    sources.record(
        session,
        source_name or result.source,
        result.format,
        True,
        counters={
            "indicators": len(result.indicators),
            "new": len(fresh),
            "skipped": sum(result.skipped.values()),
            "rejected": result.skipped.get("rejected", 0),
            "retro_hunt_alerts": hunt.alerts,
        },
    )
    audit.append(
        session,
        actor,
        "indicators.load",
        "indicator_source",
        source_name or result.source,
        {
            "format": result.format,
            "indicators": len(result.indicators),
            "new": len(fresh),
            "skipped": dict(result.skipped),
            "retro_hunt": {
                "days": retro_days,
                "observations": hunt.observations,
                "alerts": hunt.alerts,
            },
        },
    )
    return Intake(len(result.indicators), len(fresh), hunt)
