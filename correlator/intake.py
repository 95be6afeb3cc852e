"""Taking in an indicator source: store it, hunt the new ones back in time, audit it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from core.telemetry import Telemetry
from correlator import bulkstore, sources, unchanged
from correlator.alerts import EntityLookup
from correlator.index import row_record
from correlator.retrohunt import HuntResult, Stored, retro_hunt
from correlator.rows import ObservationRow
from correlator.warninglists import Warninglists
from rules.indicator import Indicator
from rules.sources import LoadResult
from rules.warninglists import Warnings


@dataclass(frozen=True)
class Intake:
    loaded: int
    new: int
    hunt: HuntResult


class TakeIn(Protocol):
    """An indicator source into the store with the installation's settings (warninglists,
    retro-hunt depth, dedup window, the constituency): what the upload route, the CLI
    import and the sync and feed use cases are given (`IndicatorIntake`, built by
    `vigia.wiring.build`), not the whole container."""

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
    warnings: Warnings | Callable[[], Warnings | None] | None = None,
    stored: Stored | None = None,
) -> Intake:
    """The source's records are `result.stream` when it has one (a loader's, read once),
    its `indicators` otherwise; what the warninglists catch is counted in `result`.

    A source whose content digest is given (`result.digest`) and found as its last
    full intake left it is not read at all (correlator.unchanged): its run and one
    audit entry are recorded, with the counts of that intake, and nothing else.

    `warnings` may be a call that waits for the lists (still compiling): the records
    are then read into the store's staging table meanwhile, and screened once the
    lists are there (the same rows kept, the same counts); a source that could be
    skipped as unchanged (taken in before) waits for them instead, to stay unread."""
    name = source_name or result.source
    now = utcnow()
    given: Iterable[Indicator] = result.indicators if result.stream is None else result.stream
    staged = None
    if callable(warnings) and not unchanged.may_skip(session, result, name):
        staged = bulkstore.stage(session, given, now)
    try:
        lists = warnings() if callable(warnings) else warnings
        wanted = unchanged.mark(result, lists, name)
        counts = unchanged.last_counts(session, name, wanted, now) if wanted else None
        if counts is not None:
            read, new = int(counts.get("indicators", 0)), 0
            result.skipped.clear()  # a pull counted them already: the same, kept
            result.skipped.update(counts.get("skipped", {}))
            hunt = HuntResult(0, 0, 0)
        else:
            # In bulk: new and changed rows only (default expiries set there, per type).
            if staged is None:
                if lists is not None:
                    given = lists.filter(result, given)  # counted in result.skipped
                written = bulkstore.write(session, given, now, positions=False)
            else:
                if lists is not None:
                    staged.screen(lists.catching, result.skipped)
                written = staged.write(positions=False)
            read, new = written.read, written.new
    finally:
        if staged is not None:
            staged.close()
    if counts is None:
        # The new ones are read back for the retro-hunt only when it can find something:
        # a first import of a million makes no million records to hunt an empty store.
        fresh: list[Indicator] = []
        if (
            new
            and retro_days > 0
            and (
                stored is not None or _observations_since(session, now - timedelta(days=retro_days))
            )
        ):
            fresh = [row_record(*row) for row in bulkstore.new_rows(session, written)]
        hunt = retro_hunt(session, fresh, retro_days, window_s, entity_of, stored)
        if result.digest is None and result.redigest is not None and read:
            # A stream whose digest is known once read (a MISP pull streamed into this
            # intake): kept as a file's is, for the next intake of the same to skip.
            result.digest = result.redigest()
            wanted = unchanged.mark(result, lists, name)
        same = result.redigest is None or result.redigest() == result.digest
        if wanted is not None and read and same:
            kept = {"indicators": read, "skipped": dict(result.skipped)}
            unchanged.remember(session, name, wanted, now, kept)
    sources.record(
        session,
        name,
        result.format,
        True,
        "unchanged" if counts is not None else "",
        counters={
            "indicators": read,
            "new": new,
            "skipped": sum(result.skipped.values()),
            "rejected": result.skipped.get("rejected", 0),
            "retro_hunt_alerts": hunt.alerts,
        },
    )
    detail = {
        "format": result.format,
        "indicators": read,
        "new": new,
        "skipped": dict(result.skipped),
        "retro_hunt": {
            "days": retro_days,
            "observations": hunt.observations,
            "alerts": hunt.alerts,
        },
    }
    if counts is not None:  # not read: the counts are those of the intake it repeats
        detail["unchanged"] = {"sha256": result.digest}
    audit.append(session, actor, "indicators.load", "indicator_source", name, detail)
    return Intake(read, new, hunt)


class IndicatorIntake:
    """`take_in` with this installation's settings bound (a TakeIn): the warninglists,
    the retro-hunt depth and where it hunts, the dedup window, the constituency."""

    def __init__(
        self,
        retro_days: int,
        window_s: int,
        entity_lookup: Callable[[Session], EntityLookup],
        warninglists: Warninglists,
        telemetry: Telemetry,
        hunt_in: Callable[[Session], Stored] | None = None,
    ) -> None:
        self.retro_days, self.window_s = retro_days, window_s
        self.entity_lookup = entity_lookup
        self.warninglists = warninglists
        self.telemetry = telemetry
        self.hunt_in = hunt_in  # Elasticsearch, when there is one; else the SQL store

    def __call__(
        self, session: Session, result: LoadResult, actor: str, source_name: str | None = None
    ) -> Intake:
        # Lists not built yet (a first start: compiled in a child process, seconds): the
        # source is read meanwhile and screened after (take_in).
        lists = self.warninglists
        warnings = lists.get() if lists.ready() else lists.get
        lists.start()
        intake = take_in(
            session,
            result,
            actor,
            self.retro_days,
            self.window_s,
            self.entity_lookup(session),
            source_name,
            warnings=warnings,
            stored=self.hunt_in(session) if self.hunt_in else None,
        )
        intake.hunt.suppressed.count_into(self.telemetry)  # a whitelist's hits, as at ingest
        return intake


def _observations_since(session: Session, since: object) -> bool:
    q = select(ObservationRow.id).where(ObservationRow.timestamp >= since).limit(1)
    return session.execute(q).first() is not None
