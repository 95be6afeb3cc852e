"""Ingest: a sensor's batch of observations → stored, matched, alerts upserted.

The batch is validated whole before anything is written, and written in one
transaction keyed by its batch id: a retried batch changes nothing, a bad one
changes nothing, and an accepted one is never half-stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from correlator.alerts import AlertFolder, EntityLookup
from correlator.esstore import alert_doc
from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from correlator.store import AlertStore, BatchRow, IndicatorStore, ObservationRow
from sensors.observation import Observation, ObservationError
from vigia.core.clock import utcnow
from vigia.core.db import Database
from vigia.core.telemetry import Telemetry

log = logging.getLogger("vigia.ingest")


class BatchError(ValueError):
    """A batch that breaks the observation contract; nothing of it is stored."""


class StoreUnavailable(Exception):
    """A store the batch must reach is away: nothing of it was written; retry later."""


class _Taken(Exception):
    """The batch id was stored between matching and writing."""


@dataclass(frozen=True)
class IngestResult:
    batch_id: str
    observations: int
    alerts: int
    duplicate: bool


class LiveIndex:
    """The running index, kept in step with the stored indicators.

    Additions and refreshes are read incrementally (the rows stamped with a later
    version) and put in place; a removal (expiry purge) rebuilds it whole, into a
    new index swapped in atomically."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: int | None = None
        self.index = IndicatorIndex()

    def current(self, session: Session) -> IndicatorIndex:
        version, rebuild = IndicatorStore.version(session)
        if version != self._version:
            with self._lock:  # another thread may have caught up meanwhile
                held = self._version
                if version != held:
                    self._catch_up(session, held, version, rebuild)
                    self._version = version
        return self.index

    def _catch_up(self, session: Session, held: int | None, version: int, rebuild: int) -> None:
        """From version `held` to `version`: rebuilt after a removal (or a store that
        went back, restored), else the changed rows put in place."""
        if held is None or rebuild > held or version < held:
            self.index = IndicatorIndex(IndicatorStore.load_all(session))
            return
        now = utcnow()  # rows of versions after ours: puts, under the GIL, as readers read
        for ind in IndicatorStore.changed_since(session, held):
            self.index.put(ind, ind.expires is None or ind.expires > now)


class IngestService:
    def __init__(
        self,
        db: Database,
        live: LiveIndex,
        window_s: int,
        entity_of: Callable[[Session], EntityLookup] | None = None,
        max_batch: int = 10_000,
        after_alerts: Callable[[Session, list[str]], object] | None = None,
        telemetry: Telemetry | None = None,
        mirror: Callable[[list[dict[str, Any]]], object] | None = None,
        store_first: Callable[[str, list[dict[str, Any]]], object] | None = None,
    ) -> None:
        # Before the batch is written: its observations into the telemetry store
        # (Elasticsearch), idempotently; a failure refuses the batch (the sensor retries).
        self.store_first = store_first
        # After each committed batch: the alerts as now stored (a sync job catches up).
        self.mirror = mirror
        self.telemetry = telemetry or Telemetry()
        self.after_alerts = after_alerts  # the composition root groups them into incidents
        self.db = db
        self.live = live
        self.window_s = window_s
        self.entity_of = entity_of
        self.max_batch = max_batch

    @staticmethod
    def parse(docs: list[Any], max_batch: int) -> list[Observation]:
        if len(docs) > max_batch:
            raise BatchError(f"batch of {len(docs)} observations exceeds the limit of {max_batch}")
        out = []
        for n, doc in enumerate(docs):
            try:
                out.append(Observation.from_ecs(doc))
            except ObservationError as exc:
                raise BatchError(f"observations[{n}]: {exc}") from None
        return out

    def _store(
        self,
        batch_id: str,
        observations: list[Observation],
        docs: list[Any],
        alerts: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """Write one batch; the alerts as now stored (for the mirror)."""
        with self.db.transaction() as session:
            if session.get(BatchRow, batch_id) is not None:
                raise _Taken(batch_id)
            # The batch id first: a twin racing on another replica waits on it here,
            # then fails (IntegrityError) before doing any of the work.
            session.add(
                BatchRow(
                    batch_id=batch_id,
                    observer=observations[0].observer if observations else "",
                    received_at=utcnow(),
                    observations=len(observations),
                    alerts=len(alerts),
                )
            )
            session.flush()
            for alert in alerts:
                AlertStore.upsert(session, alert)
            if alerts and self.after_alerts is not None:
                self.after_alerts(session, [a["event"]["id"] for a in alerts])
            stored: list[dict[str, Any]] = []
            if self.mirror is not None:
                for a in alerts:
                    row = AlertStore.get(session, a["event"]["id"])
                    if row is not None:
                        stored.append(alert_doc(row))
            # One executemany, not an ORM object per observation: this is the hot path.
            if observations:
                session.execute(
                    insert(cast(Table, ObservationRow.__table__)),  # Core: no ORM state per row
                    [
                        {
                            "timestamp": datetime.fromtimestamp(o.timestamp, UTC),
                            "observer": o.observer,
                            "batch_id": batch_id,
                            "doc": d,
                        }
                        for o, d in zip(observations, docs, strict=True)
                    ],
                )
        return stored

    def _duplicate(self, held: BatchRow) -> IngestResult:
        self.telemetry.count("ingest_batches_duplicate")
        return IngestResult(held.batch_id, held.observations, held.alerts, duplicate=True)

    def ingest(self, batch_id: str, docs: list[Any]) -> IngestResult:
        try:
            observations = self.parse(docs, self.max_batch)
        except BatchError:
            self.telemetry.count("ingest_batches_rejected")
            raise
        # Matching reads only: done before the write lock, which on SQLite is one
        # for the whole database, so that concurrent batches overlap here.
        with self.db.transaction(write=False) as session:
            held = session.get(BatchRow, batch_id)
            if held is not None:
                return self._duplicate(held)
            matcher = Matcher(self.live.current(session))
            lookup = self.entity_of(session) if self.entity_of else None
            folder = AlertFolder(self.window_s, lookup)
            for m in matcher.match_many(observations):
                folder.add(m)
            alerts = folder.alerts()
        if self.store_first is not None:
            try:
                self.store_first(batch_id, docs)
            except Exception as exc:
                self.telemetry.count("ingest_batches_unavailable")
                log.warning("batch %s refused: %s", batch_id, exc)
                raise StoreUnavailable(f"observations not stored: {exc}") from None
        try:
            stored = self._store(batch_id, observations, docs, alerts)
        except (_Taken, IntegrityError):  # a twin of this batch (a retry, a replica) won
            with self.db.transaction(write=False) as session:
                held = session.get(BatchRow, batch_id)
            if held is None:
                raise
            return self._duplicate(held)
        t = self.telemetry
        if self.mirror is not None:
            try:
                self.mirror(stored)
            except Exception as exc:  # the SQL store has it; the sync job sends it later
                t.count("mirror_failures")
                log.warning("batch %s not mirrored: %s", batch_id, exc)
        t.count("ingest_batches")
        t.count("ingest_observations", len(observations))
        t.count("alerts_upserted", len(alerts))
        return IngestResult(batch_id, len(observations), len(alerts), duplicate=False)
