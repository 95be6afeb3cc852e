"""Retro-hunt: new indicators searched over the observations already stored.

What Zeek, Suricata and hourly indicator-match rules cannot do: an indicator
published today finds last week's contact. Only indicators new to the store
are hunted, so no match is counted twice; the alerts it raises carry the
`retro-hunt` tag and the deterministic id of the match they stand for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import utcnow
from correlator.alerts import AlertFolder, EntityLookup
from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from correlator.store import AlertStore, IndicatorStore, ObservationRow
from correlator.whitelist import Suppressed
from rules.indicator import Indicator
from sensors.observation import Observation, ObservationError

RETRO_TAG = "retro-hunt"


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
    """Every observation stored since then, read from the SQL store by id."""

    def pages(_indicators: list[Indicator], since: datetime) -> Iterator[list[dict[str, Any]]]:
        last_id = 0
        while True:
            rows = session.execute(
                select(ObservationRow.id, ObservationRow.doc)
                .where(ObservationRow.timestamp >= since, ObservationRow.id > last_id)
                .order_by(ObservationRow.id)
                .limit(batch)
            ).all()
            if not rows:
                return
            last_id = rows[-1][0]
            yield [doc for _, doc in rows]

    return pages


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
