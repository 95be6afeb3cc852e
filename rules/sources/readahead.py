"""Pages made in a thread while the caller reads the ones before.

A MISP sync on PostgreSQL streams its pages into the intake (no database-wide
write lock to hold there, unlike SQLite): the pages are fetched and read into
indicators in this thread while the intake COPYs the ones before; PostgreSQL's
own work runs meanwhile in its own process. At most `depth` pages wait. An error
in the thread is raised to the reader where the next page would have been; a
reader that stops early stops the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def read_ahead(pages: Iterable[list[T]], depth: int = 2) -> Generator[T, None, None]:
    """The items of `pages` in order, the pages made in a thread `depth` ahead."""
    waiting: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        try:
            for page in pages:
                if not put(page):
                    return
        except BaseException as exc:  # to the reader, raised where the page was wanted
            put(exc)
            return
        put(_DONE)

    thread = threading.Thread(target=make, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = waiting.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
