"""The sensor's copy of the centre's YARA pack: fetched, checked, kept, swapped.

At start the sensor loads the last good pack from its spool folder (so it
scans from the first packet even when the centre is away), then asks the
centre for the running one; afterwards it asks again on every heartbeat, in a
thread of its own, with the digest it holds (`If-None-Match`), so an
unchanged pack costs one 304. A new pack is compiled off the packet path and
swapped in whole; one that fails (digest, compile) is refused, its reason kept
for the heartbeat, and the old one keeps scanning.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from sensors.yarascan import PackError, YaraScanner, compile_shipped

PACK_PATH = "/api/v1/rules/pack"
log = logging.getLogger("vigia.sensor.rules")


@dataclass
class PackStatus:
    fetched: int = 0  # packs taken from the centre and swapped in
    refused: int = 0  # packs refused (digest or compile), the old one kept
    fetch_failures: int = 0  # the centre unreachable or answering an error
    error: str = ""  # the last refusal or failure, "" once a pack is taken


class RulePack:
    def __init__(
        self,
        servers: list[str],
        token: str,
        folder: Path,
        scanner: YaraScanner,
        timeout_s: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.servers = servers
        self.path = folder / "yara-pack.json"
        self.scanner = scanner
        self.status = PackStatus()
        self._client = client or httpx.Client(timeout=timeout_s)
        self._headers = {"Authorization": f"Bearer {token}"}
        self._thread: threading.Thread | None = None

    def load_saved(self) -> bool:
        """The last good pack from disk, if any (refused if it no longer compiles)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return False
        try:
            pack = compile_shipped(orjson.loads(raw))
        except (orjson.JSONDecodeError, PackError) as exc:
            self._refused(f"{self.path}: {exc}")
            return False
        self.scanner.swap(pack)
        return True

    def check(self) -> bool:
        """Ask the centre once; True when a new pack was swapped in."""
        held = self.scanner.pack
        headers = dict(self._headers)
        if held is not None:
            headers["If-None-Match"] = f'"{held.sha256}"'
        resp = None
        for server in self.servers:  # the first replica that answers
            try:
                resp = self._client.get(server + PACK_PATH, headers=headers)
                break
            except httpx.HTTPError as exc:
                self._failed(f"{server}: {exc}")
        if resp is None or resp.status_code in (304, 404):  # unchanged, or no pack there
            return False
        if resp.status_code != 200:
            self._failed(f"the centre answered {resp.status_code} for the YARA pack")
            return False
        try:
            doc = orjson.loads(resp.content)
            pack = compile_shipped(doc)
        except (orjson.JSONDecodeError, PackError) as exc:
            self._refused(str(exc))
            return False
        self._save(resp.content)
        self.scanner.swap(pack)
        self.status.fetched += 1
        self.status.error = ""
        log.info("YARA pack %s: %d rules", pack.ruleset, pack.count)
        return True

    def check_soon(self) -> None:
        """`check()` in a thread of its own, unless one is still running."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self.check, name="yara-pack", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._client.close()

    def _save(self, raw: bytes) -> None:
        """The pack as taken, kept whole or not at all (written aside, then renamed)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(self.path)

    def _refused(self, reason: str) -> None:
        self.status.refused += 1
        self.status.error = reason
        log.warning("YARA pack refused, the one held keeps scanning: %s", reason)

    def _failed(self, reason: str) -> None:
        self.status.fetch_failures += 1
        self.status.error = reason
