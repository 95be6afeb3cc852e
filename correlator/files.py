"""A file seen on the wire (sent by a sensor) or a sample (sent by an analyst): its
hashes against the indicators, its bytes against the running YARA pack, alerts as
for observations (stored, grouped into incidents and mirrored as a batch's are),
and, when asked, the bytes kept for analysts by SHA-256.

The hashing and the YARA scan run outside any transaction (a read gives the
indicators, a short write stores the alerts), so SQLite's write lock is never held
across them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.clock import iso
from core.telemetry import Telemetry
from correlator.filestore import FileStore
from correlator.ingest import IngestService
from correlator.liverules import LiveRules
from sensors.observation import Observation, ObservationError


class FileRefused(ValueError):
    """The file or where it was seen cannot be taken: 422 with this reason."""


@dataclass(frozen=True)
class Seen:
    """Where and when a file was seen; what a sensor knows of its flow."""

    observer: str
    timestamp: datetime | None = None
    src_ip: str = "0.0.0.0"
    dst_ip: str = "0.0.0.0"
    src_port: int | None = None
    dst_port: int | None = None
    transport: str = "tcp"
    community_id: str = ""
    protocol: str = ""
    filename: str = ""
    source: str = "upload"  # which extractor or person sent it (YARA's `source` external)

    def observation(self) -> Observation:
        when = self.timestamp or datetime.now(UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        src = {"ip": self.src_ip, **({"port": self.src_port} if self.src_port is not None else {})}
        dst = {"ip": self.dst_ip, **({"port": self.dst_port} if self.dst_port is not None else {})}
        doc = {
            "@timestamp": iso(when),
            "observer": {"name": self.observer},
            "source": src,
            "destination": dst,
            "network": {
                "transport": self.transport,
                "community_id": self.community_id or "1:upload",
            },
        }
        try:
            obs = Observation.from_ecs(doc)
        except ObservationError as exc:
            raise FileRefused(str(exc)) from None
        if self.protocol:
            obs.protocol = self.protocol
        if self.filename:
            obs.add("file.name", self.filename)
        return obs


@dataclass(frozen=True)
class Scanned:
    sha256: str
    size: int
    yara: list[str] = field(default_factory=list)  # the rules that matched
    alerts: list[str] = field(default_factory=list)  # the alerts' ids
    kept: bool | None = None  # True: stored now; False: held already; None: not kept


class FileScanner:
    def __init__(
        self, ingest: IngestService, rules: LiveRules, store: FileStore, telemetry: Telemetry
    ) -> None:
        self.ingest, self.rules, self.store, self.telemetry = ingest, rules, store, telemetry

    def take(self, seen: Seen, data: bytes, keep: bool = False, scan: bool = True) -> Scanned:
        """Keep the bytes (`keep`) and match and scan them (`scan`; false: a sensor
        that matched and scanned them itself sends them only to be kept)."""
        if not data:
            raise FileRefused("file: empty")
        obs = seen.observation()
        kept = None
        if keep:
            _, kept = self.store.keep(data)
            self.telemetry.count("files_kept" if kept else "files_kept_again")
        if not scan:
            return Scanned(hashlib.sha256(data).hexdigest(), len(data), kept=kept)
        self.rules.ensure_loaded()
        ingest = self.ingest
        with ingest.db.transaction(write=False) as session:
            index = ingest.live.current(session)
            entity_of = ingest.entity_of(session) if ingest.entity_of else None
        alerts, rules = self.rules.scan_file(
            obs, data, seen.source, index, ingest.window_s, entity_of
        )
        ids = [a["event"]["id"] for a in alerts]
        self.ingest.store_alerts(alerts, f"file {obs.values['file.hash.sha256'][0]}")
        self.telemetry.count("files_scanned")
        return Scanned(obs.values["file.hash.sha256"][0], len(data), rules, ids, kept)
