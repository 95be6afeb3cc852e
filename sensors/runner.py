"""One sensor process: a packet source → engine (with pre-filter) → shipper, on a clock.

Flushes partial batches every `flush_s`, sends what is spooled, and posts a
heartbeat with its counters every `heartbeat_s`. On stop (SIGTERM) it
finishes open flows, seals the last batch and tries once more to send:
whatever the centre does not take stays in the spool for the next start.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sensors import yarascan
from sensors.capture import LiveCapture, Packets
from sensors.config import SensorSettings
from sensors.engine import Sensor, SensorConfig
from sensors.filesend import FileSender
from sensors.flow import Content
from sensors.prefilter import PreFilter
from sensors.rulepack import RulePack
from sensors.ship import Shipper
from sensors.spool import Spool
from sensors.yarascan import YaraScanner


def quiet_gc() -> None:
    """Leave garbage collection to the sensor's clock, for a process that runs the engine.

    Python's cycle collector runs each time 700 more containers live than
    before; while the flow table grows that is every few hundred packets, and
    each pass walks the young flows: up to a fifth of the time. The engine
    makes no reference cycles (tests/test_compiled.py checks): its garbage
    goes by reference counting. So automatic passes are turned off, and
    SensorService.tick() runs a full one every GC_INTERVAL_S for whatever else
    in the process (HTTP client, TLS) may leave cycles.
    """
    gc.collect()
    gc.freeze()  # what start-up built is never garbage: leave it out of every pass
    gc.disable()


GC_INTERVAL_S = 60.0


def _each(handlers: list[Callable[[Content], None]]) -> Callable[[Content], None] | None:
    """One content hand-off for the engine that calls every handler (YARA, file sending)."""
    if not handlers:
        return None
    if len(handlers) == 1:
        return handlers[0]

    def both(content: Content) -> None:
        for handle in handlers:
            handle(content)

    return both


class SensorService:
    def __init__(
        self,
        settings: SensorSettings,
        shipper: Shipper,
        live: LiveCapture | None = None,
        rules: RulePack | None = None,
        files: FileSender | None = None,
    ) -> None:
        self.settings = settings
        self.shipper = shipper
        self.live = live
        self.rules = rules  # the centre's YARA pack, scanning what the engine extracts
        self.files = files  # the bytes of small files, for the analysts (off by default)
        handlers: list[Callable[[Content], None]] = []
        if rules is not None:
            handlers.append(rules.scanner.scan)
        if files is not None:
            handlers.append(files.offer)
        prefilter = PreFilter(
            settings.allow_networks, settings.allow_domains, settings.sample_one_in
        )
        self.engine = Sensor(
            SensorConfig(observer=settings.observer, stream_depth=settings.stream_depth),
            shipper.add,
            on_content=_each(handlers),
            prefilter=prefilter,
        )
        self._last_flush = self._last_beat = self._last_gc = time.monotonic()

    @classmethod
    def build(cls, settings: SensorSettings, live: LiveCapture | None = None) -> SensorService:
        spool = Spool(
            settings.spool_dir / "batches", settings.spool_max_bytes, settings.spool_policy
        )
        shipper = Shipper(
            settings.server, settings.token(), spool, settings.observer, settings.batch_size
        )
        rules = None
        if settings.yara and yarascan.available():
            scanner = YaraScanner(shipper.add, settings.yara_timeout_s)
            rules = RulePack(shipper.servers, settings.token(), settings.spool_dir, scanner)
        files = None
        if settings.send_files_max_bytes:
            file_spool = Spool(
                settings.spool_dir / "files", settings.files_spool_max_bytes, "drop_oldest"
            )
            files = FileSender(
                shipper.servers, settings.token(), file_spool, settings.send_files_max_bytes
            )
        return cls(settings, shipper, live, rules, files)

    def start(self) -> None:
        """Before the first packet: the last good pack from disk, then the centre's."""
        if self.rules is not None:
            self.rules.load_saved()
            self.rules.check()

    def counters(self) -> dict[str, int]:
        c, s = self.engine.counters, self.shipper.counters
        spool = self.shipper.spool
        out = {
            "packets": c.packets,
            "bytes": c.bytes,
            "decoded": c.decoded,
            "not_ip": c.not_ip,
            "malformed": sum(c.malformed.values()),
            "flows": c.flows,
            "flows_evicted": c.flows_evicted,
            "flows_evicted_memory": c.flows_evicted_memory,
            "fragments": c.fragments,
            "observations": c.observations,
            "batches_sealed": s.batches_sealed,
            "batches_shipped": s.batches_shipped,
            "observations_shipped": s.observations_shipped,
            "send_failures": s.send_failures,
            "batches_refused": s.refused,
            "heartbeat_failures": s.heartbeat_failures,
            "spool_full": s.spool_full,
            "spooled_batches": len(spool),
            "spool_bytes": spool.size_bytes,
            "spool_dropped": spool.dropped,
            "refused_batches_kept": spool.refused,
        }
        for status, n in s.refused_by_status.items():  # e.g. batches_refused_403
            out[f"batches_refused_{status}"] = n
        for reason, n in c.filtered.items():
            out[f"filtered_{reason}"] = n
        if self.files is not None:
            out.update(vars(self.files.counters))
            out["files_spooled_now"] = len(self.files.spool)
        if self.rules is not None:
            y, st, pack = self.rules.scanner.counters, self.rules.status, self.rules.scanner.pack
            out["yara_rules"] = pack.count if pack is not None else 0
            out["yara_scans"], out["yara_hits"] = y.scans, y.hits
            out["yara_errors"], out["yara_unscanned"] = y.errors, y.unscanned
            out["yara_packs_fetched"], out["yara_packs_refused"] = st.fetched, st.refused
            out["yara_pack_fetch_failures"] = st.fetch_failures
        if self.live is not None:
            packets, drops = self.live.stats()
            out["kernel_packets"], out["kernel_drops"] = packets, drops
        return out

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_flush >= self.settings.flush_s:
            self.shipper.flush()
            self.shipper.drain()
            if self.files is not None:
                self.files.drain()
            self._last_flush = now
        if force or now - self._last_beat >= self.settings.heartbeat_s:
            self.shipper.heartbeat(self.counters())
            if self.rules is not None:  # a new pack? asked off the packet path
                self.rules.check_soon()
            self._last_beat = now
        if not gc.isenabled() and now - self._last_gc >= GC_INTERVAL_S:  # see quiet_gc()
            gc.collect()
            self._last_gc = now

    def run(self, packets: Packets, stop: threading.Event) -> None:
        feed = self.engine.feed
        self.start()
        try:
            for batch in packets:  # a chunk of a file, one live packet, or a tick
                feed(batch)
                self.tick()
                if stop.is_set():
                    break
        finally:
            self.engine.finish()
            self.shipper.flush()
            self.shipper.drain(force=True)
            if self.files is not None:  # sent before the last word, so it counts them
                self.files.drain(force=True)
            self.shipper.heartbeat(self.counters())  # the last word: final counters
            self.shipper.close()
            if self.rules is not None:
                self.rules.close()
            if self.files is not None:
                self.files.close()

    def deep_file(self, path: Path) -> None:
        """The deep pass over a finished capture file (DTLS, QUIC through tshark)."""
        from sensors import deep

        try:
            for obs in deep.observe(path, self.settings.observer):
                self.engine.observe(obs)
        except deep.DeepUnavailable:
            self.engine.counters.protocol_errors["deep: tshark not installed"] += 1
