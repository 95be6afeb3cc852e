"""Process counters for `/metrics`: what this replica did since it started.

Kept in memory (each replica reports its own; Prometheus sums them), updated
under a lock from the request threads and the scheduler."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class JobOutcome:
    ok: int = 0
    failed: int = 0
    skipped: int = 0  # another replica held the lease
    last_seconds: float = 0.0
    last_finished: float = 0.0  # unix time


@dataclass
class Telemetry:
    counters: Counter[str] = field(default_factory=Counter)
    # Counters with one label: (name, label) -> label value -> count (e.g. hits
    # kept out by a whitelist, by the whitelisting source).
    labelled: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    jobs: dict[str, JobOutcome] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def count_by(self, name: str, label: str, value: str, n: int = 1) -> None:
        with self._lock:
            self.labelled.setdefault((name, label), Counter())[value] += n

    def labelled_snapshot(self) -> dict[tuple[str, str], dict[str, int]]:
        with self._lock:
            return {k: dict(v) for k, v in self.labelled.items()}

    def job(self, name: str, outcome: str, seconds: float = 0.0) -> None:
        with self._lock:
            j = self.jobs.setdefault(name, JobOutcome())
            setattr(j, outcome, getattr(j, outcome) + 1)
            if outcome != "skipped":
                j.last_seconds, j.last_finished = seconds, time.time()

    def snapshot(self) -> tuple[dict[str, int], dict[str, JobOutcome]]:
        with self._lock:
            return dict(self.counters), {k: JobOutcome(**vars(v)) for k, v in self.jobs.items()}
