"""Offline scan (`vigia scan`): pcaps through the sensor engine and the matcher.

Like `zeek -r`: one pass, alerts folded per dedup window and written at the
end. A file cut short stops that file, not the run: what was read still
yields its alerts, and the error is reported.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from correlator.alerts import AlertFolder, EntityLookup
from correlator.matcher import Matcher
from sensors.engine import Content, Counters, Sensor, SensorConfig
from sensors.observation import Observation
from sensors.pcapfile import CaptureError, is_capture, read_packets


@dataclass
class ScanSummary:
    files: int = 0
    elapsed_s: float = 0.0
    counters: Counters = field(default_factory=Counters)
    hits: Counter[str] = field(default_factory=Counter)  # by matched.type
    alerts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def packets_per_s(self) -> float:
        return self.counters.packets / self.elapsed_s if self.elapsed_s > 0 else 0.0


def check_captures(paths: list[Path]) -> None:
    """Fail fast, before any work, on a path that is not a readable capture."""
    for p in paths:
        try:
            with p.open("rb") as fh:
                head = fh.read(4)
        except OSError as exc:
            raise CaptureError(f"{p}: cannot open: {exc.strerror}") from None
        if not is_capture(head):
            raise CaptureError(f"{p}: not a pcap or pcapng file")


def scan(
    paths: list[Path],
    matcher: Matcher,
    window_s: int,
    observer: str,
    entity_of: EntityLookup | None = None,
    progress: Callable[[int], None] | None = None,
    deep: bool = False,
) -> tuple[list[dict[str, Any]], ScanSummary]:
    summary = ScanSummary()
    folder = AlertFolder(window_s, entity_of)

    pending: list[Observation] = []

    def match_pending() -> None:  # in batches: the index looks values up by the group
        for m in matcher.match_many(pending):
            summary.hits[m.matched_type] += 1
            folder.add(m)
        pending.clear()

    def on_obs(obs: Observation) -> None:
        pending.append(obs)
        if len(pending) >= 1024:
            match_pending()

    def on_content(content: Content) -> None:
        for m in matcher.scan(content):
            summary.hits[m.matched_type] += 1
            folder.add(m)

    sensor = Sensor(SensorConfig(observer=observer), on_obs, on_content)
    started = time.perf_counter()
    for path in paths:
        summary.files += 1
        done = 24
        try:
            for ts, linktype, frame in read_packets(path):
                sensor.packet(ts, linktype, frame)
                if progress is not None:
                    done += len(frame) + 16
                    if done > 1 << 20:
                        progress(done)
                        done = 0
        except CaptureError as exc:
            summary.errors.append(str(exc))
        if deep:  # tshark's pass for what the fast path does not dissect (DTLS, QUIC)
            from sensors import deep as deep_pass

            try:
                for obs in deep_pass.observe(path, observer):
                    sensor.observe(obs)
            except deep_pass.DeepUnavailable as exc:
                summary.errors.append(str(exc))
        if progress is not None:
            progress(done)
    sensor.finish()
    match_pending()
    summary.elapsed_s = time.perf_counter() - started
    summary.counters = sensor.counters
    alerts = folder.alerts()
    for a in alerts:
        summary.alerts[a["threat"]["enrichments"][0]["matched"]["type"]] += 1
    return alerts, summary
