"""A MISP server through pymisp: published events, `to_ids` attributes, incremental.

Each pull asks `events/restSearch` for events changed since the last one seen
(MISP's `timestamp` filter) and returns the new high-water mark, which the
caller keeps. A broken event is skipped and counted; an unreachable server or
a refused key is one `SyncError` line, and the indicators already held stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules.sources import IndicatorFileError, LoadResult


class SyncError(Exception):
    pass


class _Quiet:
    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)
        self.level = self.logger.level
        self.logger.setLevel(logging.CRITICAL)

    def restore(self) -> None:
        self.logger.setLevel(self.level)


@dataclass(frozen=True)
class MispServer:
    url: str
    key: str
    verify_tls: bool = True
    to_ids_only: bool = True
    timeout_s: float = 60.0

    def pull(self, since: int | None) -> tuple[LoadResult, int | None]:
        from pymisp import PyMISP, PyMISPError

        from rules.sources.misp import load_event_doc

        quiet = _Quiet("pymisp")  # pymisp logs each failure itself; we report one line
        try:
            misp = PyMISP(
                self.url, self.key, ssl=self.verify_tls, timeout=self.timeout_s, tool="vigia"
            )
            found: Any = misp.search(
                controller="events",
                return_format="json",
                published=True,
                to_ids=True if self.to_ids_only else None,
                timestamp=(since + 1) if since is not None else None,
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
        result = LoadResult(self.url, "misp-sync", strict=False)
        latest = since
        for doc in events:
            event = doc.get("Event", doc) if isinstance(doc, dict) else {}
            stamp = int(event.get("timestamp", 0) or 0)  # before pymisp consumes the dict
            try:
                load_event_doc(doc, Path(self.url), result)
            except IndicatorFileError as exc:  # one broken event: the others still load
                result.reject(exc)
                continue
            latest = stamp if latest is None else max(latest, stamp)
        return result, latest

    def sighting_sender(self) -> Callable[[str, str], None]:
        """A `send(value, type)` for the sightings outbox, on one pymisp session."""
        from pymisp import PyMISP, PyMISPError

        quiet = _Quiet("pymisp")
        try:
            misp = PyMISP(
                self.url, self.key, ssl=self.verify_tls, timeout=self.timeout_s, tool="vigia"
            )
        except PyMISPError as exc:
            raise SyncError(f"{self.url}: {str(exc).splitlines()[0]}") from None
        finally:
            quiet.restore()

        def send(value: str, kind: str) -> None:
            answer = misp.add_sighting({"value": value, "type": kind, "source": "vigia"})
            if isinstance(answer, dict) and answer.get("errors"):
                raise SyncError(str(answer["errors"]))

        return send
