"""The live indicator index: the running index kept in step with the stored indicators.

Loaded in the background at start-up (or from its snapshot on disk), then
refreshed by version: the changed rows put in place, a removal rebuilt whole.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db import Database
from correlator import snapshot
from correlator.index import IndicatorIndex
from correlator.rows import IndicatorRow
from correlator.store import IndicatorStore

log = logging.getLogger("vigia.ingest")  # the name its messages had before the split


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
