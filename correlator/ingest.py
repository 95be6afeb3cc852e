"""Ingest: a sensor's batch of observations → stored, matched, alerts upserted.

The batch is validated whole before anything is written, and written in one
transaction keyed by its batch id: a retried batch changes nothing, a bad one
changes nothing, and an accepted one is never half-stored. The index a batch is
matched against is correlator.liveindex's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db import Database
from core.telemetry import Telemetry
from correlator.alerts import AlertFolder, EntityLookup
from correlator.esstore import alert_doc
from correlator.liveindex import LiveIndex
from correlator.matcher import Matcher
from correlator.rows import BatchRow, ObservationRow
from correlator.sqlkeys import observation_keys
from correlator.store import AlertStore
from sensors.observation import Observation, ObservationError

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


_ABSENT = object()


def own_observer(docs: list[Any], observer: str | None) -> None:
    """Make each document's `observer.name` the bound one, in one spelling (nested).

    The name a document gives, nested (`observer: {name}`) or dotted at the top
    (`observer.name`), must be `observer`; a document that gives none gets it. With
    no bound name (an admin posting), a document must name one, and once: two
    spellings that disagree are refused. Refused, never overwritten: a sensor that
    names another is misconfigured or lying, and the whole batch is kept out.
    Three dict reads per usual document; `from_ecs` then reads the name from the nesting.
    """
    for n, doc in enumerate(docs):
        if type(doc) is not dict:
            continue  # from_ecs refuses it, with its position
        held = doc.get("observer", _ABSENT)
        # The usual case first, in three dict reads: a sensor naming itself, nested.
        if (
            observer is not None
            and type(held) is dict
            and held.get("name") == observer
            and "observer.name" not in doc
        ):
            continue
        _own_one(n, doc, held, observer)


def _own_one(n: int, doc: dict[str, Any], held: Any, observer: str | None) -> None:
    if held is not _ABSENT and type(held) is not dict:
        raise BatchError(f"observations[{n}]: observer must be an object")
    nested: dict[str, Any] | None = None if held is _ABSENT else cast(dict[str, Any], held)
    given = []  # the names the document gives, in its two spellings
    if nested is not None and "name" in nested:
        given.append(nested["name"])
    if "observer.name" in doc:
        given.append(doc["observer.name"])
    for value in given:
        if type(value) is not str:
            raise BatchError(f"observations[{n}]: observer.name must be a string")
        if observer is not None and value != observer:
            raise BatchError(
                f"observations[{n}]: observer.name {value!r} is not the sensor this token "
                f"is bound to ({observer!r}): the centre names the observer from the "
                f"token; run the sensor with --observer {observer}"
            )
    name = observer
    if name is None:
        if not given:
            raise BatchError(f"observations[{n}]: missing field observer.name")
        if len(given) == 2 and given[0] != given[1]:
            raise BatchError(
                f"observations[{n}]: observer.name given twice, as {given[0]!r} and {given[1]!r}"
            )
        name = given[0]
    doc.pop("observer.name", None)
    if nested is None:
        doc["observer"] = {"name": name}
    else:
        nested["name"] = name


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
    def parse(docs: list[Any], max_batch: int, observer: str | None = None) -> list[Observation]:
        """The batch's observations, each `observer.name` made `observer` (the token's
        sensor) first; see own_observer."""
        if len(docs) > max_batch:
            raise BatchError(f"batch of {len(docs)} observations exceeds the limit of {max_batch}")
        own_observer(docs, observer)
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
            stored = self.upsert_alerts(session, alerts)
            # One executemany, not an ORM object per observation: this is the hot path.
            if observations:
                # Match keys narrow a retro-hunt on PostgreSQL (correlator.sqlkeys).
                keyed = session.get_bind().dialect.name == "postgresql"
                session.execute(
                    insert(cast(Table, ObservationRow.__table__)),  # Core: no ORM state per row
                    [
                        {
                            "timestamp": datetime.fromtimestamp(o.timestamp, UTC),
                            "observer": o.observer,
                            "batch_id": batch_id,
                            "doc": d,
                            "match_keys": observation_keys(o) if keyed else None,
                        }
                        for o, d in zip(observations, docs, strict=True)
                    ],
                )
        return stored

    def upsert_alerts(self, session: Session, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The one way alerts are stored: upserted (a repeat counts again), handed to
        `after_alerts` (grouped into incidents), in the caller's transaction. Returns
        the alerts as now stored, for the mirror (none without one)."""
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
        return stored

    def to_mirror(self, stored: list[dict[str, Any]], what: str) -> None:
        """After the commit: the stored alerts to the mirror (Elasticsearch); a failure
        is counted and logged, the SQL store has them and the sync job sends them later."""
        if self.mirror is None:
            return
        try:
            self.mirror(stored)
        except Exception as exc:
            self.telemetry.count("mirror_failures")
            log.warning("%s not mirrored: %s", what, exc)

    def store_alerts(self, alerts: list[dict[str, Any]], what: str) -> None:
        """Alerts raised outside a batch (a file scanned): stored, grouped, mirrored."""
        if not alerts:
            return
        with self.db.transaction() as session:
            stored = self.upsert_alerts(session, alerts)
        self.to_mirror(stored, what)

    def _duplicate(self, held: BatchRow) -> IngestResult:
        self.telemetry.count("ingest_batches_duplicate")
        return IngestResult(held.batch_id, held.observations, held.alerts, duplicate=True)

    def ingest(self, batch_id: str, docs: list[Any], observer: str | None = None) -> IngestResult:
        """Store and match one batch. `observer`: the sensor the caller's token is bound
        to, which every observation must name (or leave out); None (an admin) lets
        each observation name its own."""
        try:
            observations = self.parse(docs, self.max_batch, observer)
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
        self.to_mirror(stored, f"batch {batch_id}")
        t = self.telemetry
        t.count("ingest_batches")
        t.count("ingest_observations", len(observations))
        t.count("alerts_upserted", len(alerts))
        dropped = matcher.suppressed  # Zeek's whitelist and if_in, by whitelisting source
        for source, n in dropped.by_whitelist.items():
            t.count_by("hits_whitelisted", "source", source, n)
        if dropped.outside_if_in:
            t.count("hits_outside_if_in", dropped.outside_if_in)
        return IngestResult(batch_id, len(observations), len(alerts), duplicate=False)
