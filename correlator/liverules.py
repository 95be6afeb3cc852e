"""YARA in the running centre: the compiled pack, swapped atomically when its files
change, and files sent by sensors or analysts scanned against it.

A pack that does not compile is refused whole: the running pack stays active and
the error (file:line) is kept for `GET /api/v1/rules` and the sources page."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.clock import utcnow
from correlator.alerts import AlertFolder, EntityLookup
from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from rules.yarapack import YaraPack, YaraPackError, collect, compile_pack
from sensors.flow import Content
from sensors.observation import Observation

log = logging.getLogger("vigia.rules")


@dataclass
class RulesState:
    pack: YaraPack | None = None
    loaded_at: datetime | None = None
    error: str = ""  # the last refused reload, "" when the last one took
    fingerprint: str = ""  # of the files' names, sizes and mtimes at the last attempt
    swaps: int = 0
    scans: int = 0
    scan_errors: int = 0


@dataclass
class LiveRules:
    """The current pack; readers take `state.pack` once per scan, writers swap it."""

    paths: list[Path]
    state: RulesState = field(default_factory=RulesState)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for p in self.paths:
            if not p.exists():
                continue
            try:
                files = collect([p])
            except YaraPackError:
                continue
            for f in files:
                st = f.stat()
                h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def reload(self, force: bool = False) -> bool:
        """Compile the pack anew if its files changed; swap it in if it compiles.
        True when a new pack is active; YaraPackError (kept as state.error) if refused."""
        with self._lock:
            fp = self.fingerprint()
            if not force and fp == self.state.fingerprint:
                return False
            self.state.fingerprint = fp
            existing = [p for p in self.paths if p.exists()]
            try:
                pack = compile_pack(existing, name="vigia")
            except YaraPackError as exc:
                self.state.error = str(exc)
                log.warning("YARA pack refused, the running one stays: %s", exc)
                raise
            self.state.pack, self.state.loaded_at, self.state.error = pack, utcnow(), ""
            self.state.swaps += 1
            return True

    def ensure_loaded(self) -> None:
        """The first pack, on first use (a refusal is kept in the state, not raised)."""
        if self.state.pack is None and not self.state.error:
            with contextlib.suppress(YaraPackError):
                self.reload(force=True)

    def scan_file(
        self,
        obs: Observation,
        data: bytes,
        source: str,
        index: IndicatorIndex,
        window_s: int,
        entity_of: EntityLookup | None,
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Alerts for one file: its hashes against the indicators, its bytes against
        YARA. Returns (alerts, the YARA rules that matched)."""
        for name, algo in (
            ("md5", hashlib.md5),
            ("sha1", hashlib.sha1),
            ("sha256", hashlib.sha256),
        ):
            obs.add(f"file.hash.{name}", algo(data, usedforsecurity=False).hexdigest())
        matcher = Matcher(index, self.state.pack)
        folder = AlertFolder(window_s, entity_of)
        for m in matcher.match(obs):
            folder.add(m)
        yara_hits = matcher.scan(Content(obs, data, source))
        for m in yara_hits:
            folder.add(m)
        self.state.scans += 1
        self.state.scan_errors += matcher.yara_errors
        return folder.alerts(), [m.yara.rule for m in yara_hits if m.yara]
