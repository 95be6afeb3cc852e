"""Indicators kept on disk between a pull and its intake, page by page.

A MISP sync reads its pages over the network before it opens the write
transaction (on SQLite, every writer waits for that one), so the records wait
here, not in memory: a page at a time is pickled as plain tuples (the event's
strings, shared by its attributes, pickled once per page), and read back once,
as the intake's stream.
"""

from __future__ import annotations

import hashlib
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO

from rules.indicator import Indicator


class Spool:
    """`on_disk` False: the pages are only digested (a pull streamed into its intake,
    whose digest is kept for the next full pull to compare with)."""

    def __init__(self, on_disk: bool = True) -> None:
        self.file: IO[bytes] | None = (
            tempfile.TemporaryFile(prefix="vigia-spool-") if on_disk else None  # noqa: SIM115
        )
        self.count = 0
        # Of the records as spooled: the same pull again (nothing changed at the server)
        # gives the same digest, and the intake can skip it unread (correlator.unchanged).
        self.sha256 = hashlib.sha256()

    def add(self, indicators: Iterable[Indicator]) -> None:
        page = [
            (i.type, i.value, i.provider, i.to_ids, i.confidence, i.tlp, i.event,
             i.threat_level, i.first_seen, i.last_seen, i.comment)
            for i in indicators
        ]  # fmt: skip
        if page:
            data = pickle.dumps(page, protocol=pickle.HIGHEST_PROTOCOL)
            if self.file is not None:
                self.file.write(data)
            self.sha256.update(data)
            self.count += len(page)

    def read(self, advance: Callable[[int], None] | None = None) -> Iterator[Indicator]:
        """The records, in the order added, once, `advance` told each page's count; the
        file is gone after."""
        if self.file is None:
            raise ValueError("a spool kept nothing on disk: only its digest")
        try:
            self.file.seek(0)
            while True:
                try:
                    page = pickle.load(self.file)
                except EOFError:
                    return
                for t, v, p, ids, c, tlp, e, threat, first, last, comment in page:
                    yield Indicator(t, v, p, ids, c, tlp, e, threat, first, last, None, comment)
                if advance is not None:
                    advance(len(page))
        finally:
            self.close()

    def digest(self, skipped: Mapping[str, int]) -> str:
        """The pull's digest: its records as spooled and what it skipped, by reason (the
        pull's own reasons: what the warninglists catch is the intake's, counted later)."""
        own = sorted((k, n) for k, n in skipped.items() if not k.startswith("warninglist:"))
        whole = self.sha256.copy()
        whole.update(repr(own).encode())
        return whole.hexdigest()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
