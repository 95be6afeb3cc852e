"""Retro-hunt: new indicators searched over the observations already stored.

What Zeek, Suricata and hourly indicator-match rules cannot do: an indicator
published today finds last week's contact. Only indicators new to the store
are hunted, so no match is counted twice; the alerts it raises carry the
`retro-hunt` tag and the deterministic id of the match they stand for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, any_, bindparam, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core.clock import utcnow
from correlator import sqlkeys
from correlator.alerts import AlertFolder, EntityLookup
from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from correlator.rows import ObservationRow
from correlator.store import AlertStore, IndicatorStore
from correlator.whitelist import Suppressed
from rules.indicator import Indicator
from sensors.observation import Observation, ObservationError

RETRO_TAG = "retro-hunt"
KEYS_PER_QUERY = 20_000  # match keys asked for in one statement (one array parameter)
_BIGINTS = postgresql.ARRAY(BigInteger)
# One GIN lookup per key (correlator.sqlkeys), each observation once per statement.
_CANDIDATES = text(
    "SELECT DISTINCT o.id FROM unnest(CAST(:keys AS bigint[])) AS k(v) JOIN LATERAL "
    "(SELECT id FROM observations WHERE match_keys && ARRAY[k.v]) AS o ON true"
)
# The planner guesses that a key is held by 1 % of the rows (it keeps no statistics of
# a parameter's elements), so past a few million rows it would rather walk the table
# testing each row against every key; a prepared statement's generic plan guesses ten
# keys and does the same. A lookup per key it is: no table walk, no parallel workers,
# the plan made for these keys, and no JIT for a loop of index lookups.
_LOOKUPS = {
    "enable_seqscan": "off",
    "max_parallel_workers_per_gather": "0",
    "plan_cache_mode": "force_custom_plan",
    "jit": "off",
}
log = logging.getLogger("vigia.retrohunt")


@dataclass(frozen=True)
class HuntResult:
    indicators: int
    observations: int
    alerts: int
    suppressed: Suppressed = field(default_factory=Suppressed)  # by whitelist, by if_in


# Where the stored observations come from: the documents since a time that the
# given indicators may match, in pages (the SQL store's, or Elasticsearch's).
Stored = Callable[[list[Indicator], datetime], Iterable[list[dict[str, Any]]]]


def sql_pages(session: Session, batch: int = 5000) -> Stored:
    """The observations stored since then that the indicators may match, read from the
    SQL store: on PostgreSQL those holding one of their match keys (correlator.sqlkeys)
    and those stored before keys were written; elsewhere, or for an indicator keys
    cannot express, every one."""

    def pages(indicators: list[Indicator], since: datetime) -> Iterator[list[dict[str, Any]]]:
        if session.get_bind().dialect.name == "postgresql":
            keys = sqlkeys.indicator_keys(indicators)
            if keys is not None:
                yield from _by_keys(session, sorted(keys), since, batch)
                yield from _every(session, since, batch, ObservationRow.match_keys.is_(None))
                return
        yield from _every(session, since, batch)

    return pages


def _every(
    session: Session, since: datetime, batch: int, *where: ColumnElement[bool]
) -> Iterator[list[dict[str, Any]]]:
    """Every observation stored since then (and matching `where`), in pages by id."""
    last_id = 0
    while True:
        rows = session.execute(
            select(ObservationRow.id, ObservationRow.doc)
            .where(ObservationRow.timestamp >= since, ObservationRow.id > last_id, *where)
            .order_by(ObservationRow.id)
            .limit(batch)
        ).all()
        if not rows:
            return
        last_id = rows[-1][0]
        yield [doc for _, doc in rows]


def _by_keys(
    session: Session, keys: list[int], since: datetime, batch: int
) -> Iterator[list[dict[str, Any]]]:
    """The observations holding any of the keys, each once: one GIN lookup per key (a
    lookup of many keys at once costs per key and per entry; one key, microseconds)."""
    seen: set[int] = set()  # an observation holding keys of two chunks comes twice
    for start in range(0, len(keys), KEYS_PER_QUERY):
        _merge_pending(session)
        chunk = keys[start : start + KEYS_PER_QUERY]
        with _planner(session, _LOOKUPS):
            found = session.scalars(_CANDIDATES, {"keys": chunk}).all()
        ids = [i for i in found if i not in seen]
        seen.update(ids)
        ids.sort()
        for first in range(0, len(ids), batch):
            page = ids[first : first + batch]
            yield list(
                session.scalars(
                    select(ObservationRow.doc).where(
                        ObservationRow.id == any_(bindparam("ids", page, type_=_BIGINTS)),
                        ObservationRow.timestamp >= since,
                    )
                )
            )


@contextmanager
def _planner(session: Session, settings: dict[str, str]) -> Iterator[None]:
    """PostgreSQL's planner settings for one statement, as they were afterwards."""
    names = list(settings)
    was = [session.scalar(text("SELECT current_setting(:n)"), {"n": n}) for n in names]
    for name in names:
        session.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": settings[name]})
    try:
        yield
    finally:
        for name, value in zip(names, was, strict=True):
            session.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


def _merge_pending(session: Session) -> None:
    """Move the keys ingest wrote lately into the GIN index proper: every lookup reads
    the whole pending list (fastupdate's, up to 4 MB), a million lookups too slow."""
    try:
        with session.begin_nested():
            session.execute(text("SELECT gin_clean_pending_list('ix_observations_match_keys')"))
    except DBAPIError:  # not the index's owner: the lookups are slower, not wrong
        log.warning("retro-hunt: cannot merge the match keys' pending list", exc_info=True)


def retro_hunt(
    session: Session,
    indicators: list[Indicator],
    days: int,
    window_s: int,
    entity_of: EntityLookup | None = None,
    stored: Stored | None = None,
    now: Callable[[], datetime] = utcnow,
) -> HuntResult:
    """Alerts, stored in `session`, for what the indicators match among the
    observations of the last `days` (read from `stored`, the SQL store by default)."""
    hunting = [i for i in indicators if i.to_ids and not i.whitelist]
    if not hunting or days <= 0:
        return HuntResult(len(hunting), 0, 0)
    matcher: Matcher | None = None
    folder = AlertFolder(window_s, entity_of)
    scanned = 0
    for docs in (stored or sql_pages(session))(hunting, now() - timedelta(days=days)):
        if not docs:
            continue
        if matcher is None:  # built for the first page: nothing stored, nothing built
            # Every whitelisted value stored (these included) keeps its matches out, as at
            # ingest.
            matcher = Matcher(IndicatorIndex([*hunting, *IndicatorStore.whitelisted(session)]))
        scanned += len(docs)
        observations = []
        for doc in docs:
            try:
                observations.append(Observation.from_ecs(doc))
            except ObservationError:  # stored before a contract change: skip, never stop
                continue
        for m in matcher.match_many(observations):
            folder.add(m)
    alerts = folder.alerts()
    for alert in alerts:
        alert["tags"] = [*alert.get("tags", []), RETRO_TAG]
        AlertStore.upsert(session, alert)
    suppressed = matcher.suppressed if matcher is not None else Suppressed()
    return HuntResult(len(hunting), scanned, len(alerts), suppressed)
