"""Retro-hunt: new indicators searched over the observations already stored.

What Zeek, Suricata and hourly indicator-match rules cannot do: an indicator
published today finds last week's contact. Only indicators new to the store
are hunted, so no match is counted twice; the alerts it raises carry the
`retro-hunt` tag and the deterministic id of the match they stand for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from correlator.alerts import AlertFolder, EntityLookup
from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from correlator.store import AlertStore, ObservationRow
from rules.indicator import Indicator
from sensors.observation import Observation, ObservationError
from vigia.core.clock import utcnow

RETRO_TAG = "retro-hunt"


@dataclass(frozen=True)
class HuntResult:
    indicators: int
    observations: int
    alerts: int


def retro_hunt(
    session: Session,
    indicators: list[Indicator],
    days: int,
    window_s: int,
    entity_of: EntityLookup | None = None,
    batch: int = 5000,
    now: Callable[[], datetime] = utcnow,
) -> HuntResult:
    hunting = [i for i in indicators if i.to_ids]
    if not hunting or days <= 0:
        return HuntResult(len(hunting), 0, 0)
    matcher = Matcher(IndicatorIndex(hunting))
    folder = AlertFolder(window_s, entity_of)
    since = now() - timedelta(days=days)
    last_id, scanned = 0, 0
    while True:
        rows = session.execute(
            select(ObservationRow.id, ObservationRow.doc)
            .where(ObservationRow.timestamp >= since, ObservationRow.id > last_id)
            .order_by(ObservationRow.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        observations = []
        for row_id, doc in rows:
            last_id = row_id
            scanned += 1
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
    return HuntResult(len(hunting), scanned, len(alerts))
