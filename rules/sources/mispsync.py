"""A MISP server through pymisp: published events, `to_ids` attributes, incremental.

Each pull asks `events/restSearch` for events changed since the last one seen
(MISP's `timestamp` filter), a page of events at a time (`limit`, `page`), and
returns the new high-water mark, which the caller keeps. Pages are read into
indicators as they come, and spooled to disk (rules.sources.spool) or streamed
into the intake (rules.sources.readahead): a million attributes are never a
million objects in memory. A broken event is skipped and counted; an
unreachable server or a refused key is one `SyncError` line, and the indicators
already held stay.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rules.indicator import Indicator
from rules.sources import IndicatorFileError, LoadResult
from rules.sources.readahead import read_ahead
from rules.sources.spool import Spool


class SyncError(Exception):
    pass


# A progress display's task by its name, and that task's `advance(n)` (vigia's CLI bar).
Tasks = Callable[[str], Callable[[int], None]]


def _first(events: list[Any]) -> str:
    """What tells a page by its first event (its uuid; else id and info, else the doc)."""
    doc = events[0] if events else None
    event = doc.get("Event", doc) if isinstance(doc, dict) else doc
    if isinstance(event, dict):
        return str(event.get("uuid") or (event.get("id"), event.get("info")))
    return repr(event)[:200]


class _Quiet:
    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)
        self.level = self.logger.level
        self.logger.setLevel(logging.CRITICAL)

    def restore(self) -> None:
        self.logger.setLevel(self.level)


@dataclass
class Pulled:
    """A pull: its records (`result.stream`) and the newest event timestamp read so far,
    final once the stream is read."""

    result: LoadResult
    latest: int | None


@dataclass(frozen=True)
class MispServer:
    url: str
    key: str
    verify_tls: bool = True
    to_ids_only: bool = True
    timeout_s: float = 60.0
    page_events: int = 25  # events per restSearch page: what one page costs in memory

    def pull(
        self, since: int | None, spooled: bool = True, progress: Tasks | None = None
    ) -> Pulled:
        """What changed since `since`, as a result whose records are a stream read once
        (its `stream`), and the new high-water mark (`latest`, once the stream is read).

        Spooled (SQLite): every page is read, into a spool on disk, before this returns,
        so the network is outside the intake's write transaction; a server that fails
        on page 7 is a SyncError here. The spool's digest goes with the result: a full
        sync that finds nothing changed is not read again. Not spooled (PostgreSQL,
        where nothing waits on a write transaction): the pages are read in a thread as
        the intake takes them in (rules.sources.readahead); a failed page is a SyncError
        out of the stream, and the intake's transaction takes nothing in.

        `progress` (the CLI's bar) names a task and gets its `advance(n)`: the records
        read, page by page, and the spooled ones as the intake takes them."""
        pulled = Pulled(LoadResult(self.url, "misp-sync", strict=False), since)
        result = pulled.result
        read = progress("leyendo MISP") if progress else None
        if not spooled:  # connected here: a server that is down or refuses the key fails now
            digested = Spool(on_disk=False)
            pages = self._records(since, pulled, self._session(), read, digested)
            result.stream = read_ahead(pages)
            # Known once the stream is read: kept, a later full pull is compared with it.
            result.redigest = partial(digested.digest, result.skipped)
            return pulled
        spool = Spool()
        try:
            for records in self._records(since, pulled, advance=read):
                spool.add(records)
        except BaseException:
            spool.close()
            raise
        result.digest = spool.digest(result.skipped)
        result.stream = spool.read(progress("guardando") if progress else None)
        return pulled

    def _records(
        self,
        since: int | None,
        pulled: Pulled,
        misp: Any = None,
        advance: Callable[[int], None] | None = None,
        digested: Spool | None = None,
    ) -> Iterator[list[Indicator]]:
        """Each page's indicators; `pulled.latest` follows the events read."""
        from rules.sources.misp import event_indicators

        result = pulled.result
        for events in self._pages(since, misp or self._session()):
            records: list[Indicator] = []
            for doc in events:
                event = doc.get("Event", doc) if isinstance(doc, dict) else {}
                try:
                    records.extend(event_indicators(doc, Path(self.url), result))
                except IndicatorFileError as exc:  # one broken event: the others load
                    result.reject(exc)
                    continue
                stamp = int(event.get("timestamp", 0) or 0)
                pulled.latest = stamp if pulled.latest is None else max(pulled.latest, stamp)
            if advance is not None:
                advance(len(records))
            if digested is not None:
                digested.add(records)
            yield records

    def _pages(self, since: int | None, misp: Any) -> Iterator[list[Any]]:
        """`events/restSearch` a page of `page_events` at a time, until a short page; the
        next page is asked for while this one is read. A server that does not page (the
        first page again) is read once."""
        first = ""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="misp-page") as ahead:
            coming = ahead.submit(self._page, misp, since, 1)
            for page in itertools.count(1):
                events = coming.result()
                if page == 1:
                    first = _first(events)
                elif events and _first(events) == first:
                    return  # the first page again: the server ignores `page`
                full = len(events) == self.page_events
                if full:
                    coming = ahead.submit(self._page, misp, since, page + 1)
                yield events
                if not full:
                    return

    def _page(self, misp: Any, since: int | None, page: int) -> list[Any]:
        from pymisp import PyMISPError

        quiet = _Quiet("pymisp")  # pymisp logs each failure itself; we report one line
        try:
            found: Any = misp.search(
                controller="events",
                return_format="json",
                published=True,
                to_ids=True if self.to_ids_only else None,
                timestamp=(since + 1) if since is not None else None,
                limit=self.page_events,
                page=page,
            )
        except PyMISPError as exc:
            raise SyncError(f"{self.url}: {str(exc).splitlines()[0]}") from None
        except OSError as exc:
            raise SyncError(f"{self.url}: {exc}") from None
        finally:
            quiet.restore()
        if isinstance(found, dict) and found.get("errors"):
            raise SyncError(f"{self.url}: {found['errors']}")
        events = found.get("response", []) if isinstance(found, dict) else found
        if not isinstance(events, list):
            raise SyncError(f"{self.url}: not a list of events: {str(events)[:80]}")
        return events

    def _session(self) -> Any:
        from pymisp import PyMISP, PyMISPError

        quiet = _Quiet("pymisp")
        try:
            return PyMISP(
                self.url, self.key, ssl=self.verify_tls, timeout=self.timeout_s, tool="vigia"
            )
        except PyMISPError as exc:
            raise SyncError(f"{self.url}: {str(exc).splitlines()[0]}") from None
        except OSError as exc:
            raise SyncError(f"{self.url}: {exc}") from None
        finally:
            quiet.restore()

    def sighting_sender(self) -> Callable[[str, str], None]:
        """A `send(value, type)` for the sightings outbox, on one pymisp session."""
        misp = self._session()

        def send(value: str, kind: str) -> None:
            answer = misp.add_sighting({"value": value, "type": kind, "source": "vigia"})
            if isinstance(answer, dict) and answer.get("errors"):
                raise SyncError(str(answer["errors"]))

        return send
