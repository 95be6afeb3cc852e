"""Files for the analysts: the bytes of extracted files up to a size cap, sent to the centre.

Off unless `send_files_max_bytes` is set. A file goes once per content (its
SHA-256, remembered for the last few thousand) through a spool of its own, so
a centre that is away costs nothing but disk, bounded like the batches'. The
centre keeps each file once by SHA-256 and does not match or scan it again:
the sensor's own observations and YARA hits already did (`keep=true`,
`scan=false` on `POST /api/v1/files`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import orjson

from sensors.flow import Content
from sensors.ship import REFUSED
from sensors.spool import Spool, SpoolFull

FILES_PATH = "/api/v1/files"
log = logging.getLogger("vigia.sensor")


@dataclass
class FileCounters:
    files_spooled: int = 0
    files_sent: int = 0
    files_too_large: int = 0  # over the cap: named and hashed as always, bytes not sent
    files_refused: int = 0  # the centre will not take them: set aside with its reason
    files_spool_full: int = 0


class FileSender:
    def __init__(
        self,
        servers: list[str],
        token: str,
        spool: Spool,
        max_bytes: int,
        timeout_s: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.servers = servers
        self.spool = spool
        self.max_bytes = max_bytes
        self.counters = FileCounters()
        self._client = client or httpx.Client(timeout=timeout_s)
        self._headers = {"Authorization": f"Bearer {token}"}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._retry_at = 0.0
        self._backoff = 1.0
        self._current = 0

    def offer(self, content: Content) -> None:
        """The engine's content hand-off: spool the file if it is small enough and new."""
        data, obs = content.data, content.observation
        sha256 = (obs.values.get("file.hash.sha256") or [""])[0]
        if not data or not sha256 or sha256 in self._recent:
            return
        if len(data) > self.max_bytes:
            self.counters.files_too_large += 1
            return
        self._recent[sha256] = None
        if len(self._recent) > 4096:
            self._recent.popitem(last=False)
        when = datetime.fromtimestamp(obs.timestamp, UTC)
        meta = {
            "observer": obs.observer,
            "timestamp": when.isoformat(),
            "src_ip": obs.src_ip,
            "dst_ip": obs.dst_ip,
            "transport": obs.transport,
            "community_id": obs.community_id,
            "protocol": obs.protocol or "",
            "source": content.source,
            "name": (obs.values.get("file.name") or [""])[0],
            **({"src_port": obs.src_port} if obs.src_port is not None else {}),
            **({"dst_port": obs.dst_port} if obs.dst_port is not None else {}),
        }
        try:
            self.spool.put(sha256, orjson.dumps(meta) + b"\n" + data)
        except SpoolFull:
            self.counters.files_spool_full += 1
            return
        self.counters.files_spooled += 1

    def drain(self, force: bool = False) -> int:
        """Send spooled files oldest first until one fails; how many went."""
        if not force and time.monotonic() < self._retry_at:
            return 0
        sent = 0
        while (item := self.spool.peek()) is not None:
            head, _, data = item.payload.partition(b"\n")
            meta = orjson.loads(head)
            name = meta.pop("name") or item.batch_id
            form = {k: str(v) for k, v in meta.items()} | {"keep": "true", "scan": "false"}
            server = self.servers[self._current]
            try:
                resp = self._client.post(
                    server + FILES_PATH,
                    files={"file": (name, data, "application/octet-stream")},
                    data=form,
                    headers=self._headers,
                )
            except httpx.HTTPError as exc:
                self._failed(f"{server}: {exc.__class__.__name__}")
                return sent
            if resp.status_code == 200:
                self.counters.files_sent += 1
                self.spool.ack(item)
            elif resp.status_code in REFUSED:
                self.counters.files_refused += 1
                self.spool.refuse(item, f"{resp.status_code} {resp.text[:500]}")
                log.warning("the centre refused a file (%s): set aside", resp.status_code)
            else:
                self._failed(f"{server}: {resp.status_code}")
                return sent
            sent += 1
            self._backoff = 1.0
        return sent

    def _failed(self, reason: str) -> None:
        log.debug("files not sent now: %s", reason)
        self._current = (self._current + 1) % len(self.servers)
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, 60.0)

    def close(self) -> None:
        self.drain(force=True)
        self._client.close()
