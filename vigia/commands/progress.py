"""Progress of long CLI work on stderr, drawn by rich when stderr is a terminal and
nothing otherwise (a pipe, a log file, cron): a scan's bytes against the total, an
import's or a MISP sync's records as they are read (no total known ahead)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

Advance = Callable[[int], None]


def _ignore(n: int) -> None:
    pass


class Progress:
    """`with Progress() as p:` then `p.task("leyendo", total)` gives an `advance(n)`;
    without a terminal every advance is a no-op."""

    def __init__(self, byte_counts: bool = False) -> None:
        self.byte_counts = byte_counts
        self.bar: Any = None

    def __enter__(self) -> Progress:
        if not sys.stderr.isatty():
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        counts = (
            (DownloadColumn(), TimeRemainingColumn())
            if self.byte_counts
            else (TextColumn("{task.completed:,.0f}"), TimeElapsedColumn())
        )
        self.bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            *counts,
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        return self

    def task(self, description: str, total: int | None = None) -> Advance:
        if self.bar is None:
            return _ignore
        bar, task = self.bar, self.bar.add_task(description, total=total)
        return lambda n: bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def counted(items: Iterable[T], advance: Advance, every: int = 10_000) -> Iterator[T]:
    """`items` as they come, `advance` told every `every` of them and at the end."""
    n = 0
    for n, item in enumerate(items, start=1):
        if not n % every:
            advance(every)
        yield item
    advance(n % every)
