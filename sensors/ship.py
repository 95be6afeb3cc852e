"""Shipping observations to the centre: compressed batches through the spool.

`add()` buffers observations; a full buffer (or `flush()`) seals a batch with
a unique id into the spool; `drain()` sends spooled batches oldest first and
stops at the first failure, to retry later with back-off. The centre stores
a batch id once, so a batch sent twice (a lost reply) is still stored once.
"""

from __future__ import annotations

import gzip
import time
import uuid
from dataclasses import dataclass

import httpx
import orjson

from sensors.observation import Observation
from sensors.spool import Spool, SpoolFull

INGEST_PATH = "/api/v1/observations"
HEARTBEAT_PATH = "/api/v1/sensors/heartbeat"


@dataclass
class ShipCounters:
    batches_sealed: int = 0
    batches_shipped: int = 0
    observations_shipped: int = 0
    send_failures: int = 0
    refused: int = 0  # batches the centre rejected as invalid (kept aside, not retried)
    spool_full: int = 0  # batches refused by a full spool with policy `stop`


class Shipper:
    def __init__(
        self,
        server: str,
        token: str,
        spool: Spool,
        observer: str,
        batch_size: int = 500,
        timeout_s: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        # One centre, or several replicas ("https://a,https://b"): a failure moves on
        # to the next one; the batch id makes a batch sent twice count once.
        self.servers = [u.strip().rstrip("/") for u in server.split(",") if u.strip()]
        self._current = 0
        self.spool = spool
        self.observer = observer
        self.batch_size = batch_size
        self.counters = ShipCounters()
        self._buffer: list[dict[str, object]] = []
        self._client = client or httpx.Client(timeout=timeout_s)
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        self._retry_at = 0.0
        self._backoff = 1.0

    def add(self, obs: Observation) -> None:
        self._buffer.append(obs.to_ecs())
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Seal what is buffered into the spool (even if the centre is down)."""
        if not self._buffer:
            return
        batch_id = f"{self.observer}-{uuid.uuid4().hex}"
        body = orjson.dumps({"batch_id": batch_id, "observations": self._buffer})
        try:
            self.spool.put(batch_id, gzip.compress(body, compresslevel=5))
        except SpoolFull:
            self.counters.spool_full += 1
            return  # keep the buffer: the caller sees spool_full rise and slows down
        self._buffer = []
        self.counters.batches_sealed += 1

    def drain(self, force: bool = False) -> int:
        """Send spooled batches in order until one fails; returns how many went."""
        if not force and time.monotonic() < self._retry_at:
            return 0
        sent = 0
        while (batch := self.spool.peek()) is not None:
            try:
                resp = self._client.post(
                    self.server + INGEST_PATH, content=batch.payload, headers=self._headers
                )
            except httpx.HTTPError:
                self._failed()
                return sent
            if resp.status_code == 200:
                self.counters.batches_shipped += 1
                self.counters.observations_shipped += int(resp.json().get("observations", 0))
            elif resp.status_code in (400, 413, 422):
                # The centre will never take this batch: keep it for a person, move on.
                self.counters.refused += 1
                batch.path.rename(batch.path.with_name(batch.path.name + ".refused"))
            else:  # 401/403/429/5xx: the batch is fine, the moment is not
                self._failed()
                return sent
            self.spool.ack(batch)
            sent += 1
            self._backoff = 1.0
        return sent

    @property
    def server(self) -> str:
        return self.servers[self._current]

    def _failed(self) -> None:
        self.counters.send_failures += 1
        self._current = (self._current + 1) % len(self.servers)
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, 60.0)

    def heartbeat(self, counters: dict[str, int]) -> bool:
        try:
            resp = self._client.post(
                self.server + HEARTBEAT_PATH,
                json={"observer": self.observer, "counters": counters},
                headers={"Authorization": self._headers["Authorization"]},
            )
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def close(self) -> None:
        """Seal the rest and try once to send; whatever does not go stays spooled."""
        self.flush()
        self.drain(force=True)
        self._client.close()
