"""Ingest: a sensor's batch of observations → stored, matched, alerts upserted.

The batch is validated whole before anything is written, and written in one
transaction keyed by its batch id: a retried batch changes nothing, a bad one
changes nothing, and an accepted one is never half-stored.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db import Database
from core.telemetry import Telemetry
from correlator import snapshot
from correlator.alerts import AlertFolder, EntityLookup
from correlator.esstore import alert_doc
from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from correlator.rows import BatchRow, IndicatorRow, ObservationRow
from correlator.sqlkeys import observation_keys
from correlator.store import AlertStore, IndicatorStore
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


class IndexLoading(Exception):
    """The first index is still being built: the caller answers 503 and is asked to
    come back (a sensor keeps the batch in its spool)."""

    def __init__(self, loaded: int, failure: str | None = None) -> None:
        super().__init__(f"the indicator index is loading ({loaded} indicators so far)")
        self.loaded = loaded
        self.failure = failure


# Up to this many rows to read, a request refreshes the index itself (well under a
# second); more, and a background thread does it while requests are served.
SYNC_ROWS = 10_000
# From this many indicators, a loaded index is frozen out of the cyclic collector
# (gc.freeze): a full collection would otherwise walk it for seconds every time.
FREEZE_FROM = 100_000


def _store_id(db: Database) -> str:
    """Which store a snapshot came from, without the credentials in its URL."""
    return hashlib.sha256(db.url.encode()).hexdigest()[:32]


class LiveIndex:
    """The running index, kept in step with the stored indicators.

    Additions and refreshes are read incrementally (the rows stamped with a later
    version) and put in place; a removal (expiry purge) rebuilds it whole, into a
    new index swapped in atomically.

    With a database to read from (the centre), large work never holds a request:
    the first load, a rebuild and a catch-up of more than SYNC_ROWS rows run in one
    background thread; a request waits for it at most `wait_s` after it started,
    then is served the index held (the old one, meanwhile) or, before the first
    load ends, refused with IndexLoading. Without one (unit tests), the caller does the work."""

    def __init__(
        self, db: Database | None = None, wait_s: float = 0.25, snapshot: Path | None = None
    ) -> None:
        self._db = db
        self.wait_s = wait_s
        self._snapshot = snapshot  # the index kept on disk (correlator.snapshot), if any
        self._unsaved: tuple[IndicatorIndex, int, int] | None = None
        self._lock = threading.Lock()
        self._version: int | None = None
        self._ready = threading.Event()
        self._worker: threading.Event | None = None  # set when the running refresh ends
        self._worker_since = 0.0
        self.index = IndicatorIndex()
        self.loaded = 0  # indicators indexed so far by the running full load
        self.failure: str | None = None  # why the last background refresh failed

    @property
    def ready(self) -> bool:
        """The first full load is in place."""
        return self._ready.is_set()

    def start(self) -> None:
        """Begin the first load in the background (the centre's start-up)."""
        if self._db is not None and not self.ready:
            with self._lock:
                if self._worker is None:
                    self._start_worker()

    def wait(self, timeout: float) -> bool:
        """Wait for the first load (in the background), at most `timeout` seconds."""
        self.start()
        return self._ready.wait(timeout)

    def current(self, session: Session) -> IndicatorIndex:
        version, rebuild = IndicatorStore.version(session)
        if version == self._version:
            return self.index
        if self._db is None:
            with self._lock:  # another thread may have caught up meanwhile
                self._refresh(session, version, rebuild)
            return self.index
        with self._lock:
            worker = self._worker
            if worker is None:
                if version == self._version:
                    return self.index
                if self._rows_to_read(session, version, rebuild) <= SYNC_ROWS:
                    self._refresh(session, version, rebuild)
                    return self.index
                worker = self._start_worker()
        # Only a refresh that started less than wait_s ago is worth waiting for (a
        # small store's first load, a short catch-up); during a long one, at once.
        worker.wait(max(0.0, self._worker_since + self.wait_s - time.monotonic()))
        if not self._ready.is_set():
            raise IndexLoading(self.loaded, self.failure)
        return self.index

    def _needs_rebuild(self, version: int, rebuild: int) -> bool:
        held = self._version
        return held is None or rebuild > held or version < held

    def _rows_to_read(self, session: Session, version: int, rebuild: int) -> int:
        """About how many rows a refresh to `version` reads (one indexed count)."""
        q = select(func.count()).select_from(IndicatorRow)
        if not self._needs_rebuild(version, rebuild):
            q = q.where(IndicatorRow.changed_in > cast(int, self._version))
        return int(session.scalar(q) or 0)

    def _refresh(self, session: Session, version: int, rebuild: int) -> None:
        """From the version held to `version`: rebuilt after a removal (or a store that
        went back, restored), else the changed rows put in place."""
        held = self._version
        if version == held:
            return
        if self._needs_rebuild(version, rebuild):
            self.loaded = 0
            index = self._kept(session, version, rebuild) if held is None else None
            if index is None:
                # Plain tuples, streamed: no ORM object or record per row.
                rows = IndicatorStore.active_rows(session, utcnow())
                index = IndicatorIndex.from_rows(self._counted(rows))
                self._unsaved = (index, version, rebuild)  # kept by the worker, once ready
            self.index = index  # the swap: readers hold the old one or the new one
        else:
            now = utcnow()  # rows of versions after ours: puts, under the GIL, as readers read
            for ind in IndicatorStore.changed_since(session, cast(int, held)):
                self.index.put(ind, ind.expires is None or ind.expires > now)
        self._version = version
        self._ready.set()

    def _kept(self, session: Session, version: int, rebuild: int) -> IndicatorIndex | None:
        """The index kept on disk, brought up to `version`; None if there is none usable
        (another database, a removal or a restore since it was taken)."""
        if self._snapshot is None or self._db is None:
            return None
        kept = snapshot.load(self._snapshot, _store_id(self._db))
        if kept is None:
            return None
        index, stamp = kept
        if stamp.version > version or rebuild > stamp.version:
            return None
        for ind in IndicatorStore.whitelisted(session):
            index.add(ind)
        now = utcnow()
        for ind in IndicatorStore.changed_since(session, stamp.version):
            index.put(ind, ind.expires is None or ind.expires > now)
        self.loaded = index.size
        return index

    def _keep(self, index: IndicatorIndex, version: int, rebuild: int) -> None:
        if self._snapshot is None or self._db is None:
            return
        try:
            stamp = snapshot.Stamp(_store_id(self._db), version, rebuild)
            snapshot.save(index, self._snapshot, stamp)
        except OSError as exc:  # the index serves all the same; the next start rebuilds
            log.warning("index snapshot not written: %s", exc)

    def _counted(self, rows: Iterable[Sequence[Any]]) -> Iterator[Sequence[Any]]:
        n = 0
        for n, row in enumerate(rows, 1):
            if not n & 0x3FFF:  # progress for /ready, without a store per row
                self.loaded = n
            yield row
        self.loaded = n

    def _start_worker(self) -> threading.Event:
        """Under the lock: one background refresh, whose end the event marks."""
        done = threading.Event()
        self._worker, self._worker_since = done, time.monotonic()
        threading.Thread(target=self._work, args=(done,), name="vigia-index", daemon=True).start()
        return done

    def _work(self, done: threading.Event) -> None:
        db = cast(Database, self._db)
        started, failure = time.monotonic(), None
        # The collector off while a million objects are made: each full collection
        # would walk them all holding the GIL, stalling every request for seconds
        # (measured: 10 s stalls, the load twice as long). Then a large index, long
        # lived, is frozen out of later collections; the load's garbage is freed by
        # reference counting once its session is closed, before the freeze.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with db.transaction(write=False) as session:
                version, rebuild = IndicatorStore.version(session)
                self._refresh(session, version, rebuild)
            if self.index.size >= FREEZE_FROM:
                gc.freeze()
            log.info(
                "indicator index at version %s: %d indicators (%.1f s)",
                self._version,
                self.index.size,
                time.monotonic() - started,
            )
        except Exception as exc:  # the next request starts another; /ready says why
            failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("indicator index not refreshed: %s", failure)
        finally:
            if collecting:
                gc.enable()
            with self._lock:
                self._worker, self.failure = None, failure
            done.set()
        # Written after the requests waiting are let go: it takes a second or two.
        unsaved, self._unsaved = self._unsaved, None
        if unsaved is not None and failure is None:
            self._keep(*unsaved)


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
