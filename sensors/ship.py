"""Shipping observations to the centre: compressed batches through the spool.

`add()` buffers observations; a full buffer (or `flush()`) seals a batch with
a unique id into the spool; `drain()` sends spooled batches oldest first. The
centre stores a batch id once, so a batch sent twice (a lost reply) is still
stored once.

Two kinds of failure. A passing one (no answer, 429, 5xx) stops the drain, to
retry later with back-off: the batch is fine, the moment is not. A refusal
(400, 401, 403, 404, 413, 422: the centre will never take this batch as it
is) sets the batch aside with the centre's reason beside it and goes on, so
it never blocks the batches behind it; it is counted by status, logged once
per cause, reminded every minute while refusals go on, and reported in the
heartbeat. A refusal of the sensor's set-up rather than of one batch (the
token, the sensor name it is bound to, the server address: every batch would
be refused alike) is kept in `setup_refusal`, so a run over files can stop on
it with one line (`Refusal.advice()`).
"""

from __future__ import annotations

import gzip
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import orjson

from sensors.observation import Observation
from sensors.spool import Spool, SpoolFull

INGEST_PATH = "/api/v1/observations"
HEARTBEAT_PATH = "/api/v1/sensors/heartbeat"
REFUSED = frozenset({400, 401, 403, 404, 413, 422})  # never taken as it is: set aside
REMIND_S = 60.0  # while refusals go on, a line in the log this often
log = logging.getLogger("vigia.sensor")

# The centre's words when a token bound to one sensor reports as another: the heartbeat's
# 403 "sensor 's1' may not report as 'x'", a batch's 422 "observer.name 'x' is not the
# sensor this token is bound to ('s1')". The bound name is learnt from them.
_BOUND = (
    re.compile(r"""sensor (['"])(?P<name>.+?)\1 may not report as"""),
    re.compile(r"""token is bound to \((['"])(?P<name>.+?)\1\)"""),
)
_ROLE = re.compile(r"role (\w+) may not")


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str  # the centre's own words (FastAPI's "detail")
    what: str = "batch"  # or "heartbeat"

    @property
    def text(self) -> str:
        return f"{self.status} {self.reason}"

    @property
    def bound_name(self) -> str | None:
        """The sensor name the token is bound to, when the centre said it."""
        for pattern in _BOUND:
            if m := pattern.search(self.reason):
                return m.group("name")
        return None

    @property
    def is_setup(self) -> bool:
        """The token, its binding or the address is wrong: every batch is refused alike."""
        return self.status in (401, 403, 404) or self.bound_name is not None

    @property
    def cause(self) -> str:
        """What makes two refusals the same, for logging once (positions aside)."""
        return f"{self.status} " + re.sub(r"\[\d+\]", "[]", self.reason)

    def advice(self) -> str:
        """One line: the cause, and what to do about it."""
        if (bound := self.bound_name) is not None:
            return f"the token is bound to sensor {bound!r}: run with --observer {bound}"
        if self.status == 401:
            return (
                f"the centre refuses the token ({self.reason}): give a valid sensor token "
                "with --token-file (vigia token create --role sensor --name NAME)"
            )
        if self.status == 403 and (m := _ROLE.search(self.reason)):
            return (
                f"the token has role {m.group(1)}, not sensor: give a sensor token with "
                "--token-file (vigia token create --role sensor --name NAME)"
            )
        if self.status == 404:
            return f"the centre has no {INGEST_PATH} ({self.reason}): check --server"
        return f"the centre refused a {self.what}: {self.text}"


@dataclass
class ShipCounters:
    batches_sealed: int = 0
    batches_shipped: int = 0
    observations_shipped: int = 0
    send_failures: int = 0  # batches not taken: passing failures and refusals
    refused: int = 0  # batches the centre will never take (set aside, not retried)
    refused_by_status: Counter[int] = field(default_factory=Counter)
    heartbeat_failures: int = 0
    spool_full: int = 0  # batches refused by a full spool with policy `stop`
    last_failure: str = ""  # the reason of the last send or heartbeat failure


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # One centre, or several replicas ("https://a,https://b"): a failure moves on
        # to the next one; the batch id makes a batch sent twice count once.
        self.servers = [u.strip().rstrip("/") for u in server.split(",") if u.strip()]
        self._current = 0
        self.spool = spool
        self.observer = observer
        self.batch_size = batch_size
        self.counters = ShipCounters()
        self.last_refusal: Refusal | None = None
        self.setup_refusal: Refusal | None = None  # the first: a run over files stops on it
        self.bound_name: str | None = None  # learnt from the centre's refusal
        self._buffer: list[dict[str, object]] = []
        self._client = client or httpx.Client(timeout=timeout_s)
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        self._clock = clock
        self._retry_at = 0.0
        self._backoff = 1.0
        self._told: set[str] = set()
        self._remind_at = 0.0
        self._refused_at_reminder = 0

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
        """Send spooled batches in order until a passing failure; returns how many
        left the queue (shipped or set aside as refused)."""
        if not force and self._clock() < self._retry_at:
            return 0
        sent = 0
        try:
            while (batch := self.spool.peek()) is not None:
                try:
                    resp = self._client.post(
                        self.server + INGEST_PATH, content=batch.payload, headers=self._headers
                    )
                except httpx.HTTPError as exc:
                    self._failed(f"{self.server}: {exc.__class__.__name__}: {exc}")
                    return sent
                if resp.status_code == 200:
                    self.counters.batches_shipped += 1
                    self.counters.observations_shipped += int(resp.json().get("observations", 0))
                    self.spool.ack(batch)
                elif resp.status_code in REFUSED:
                    refusal = Refusal(resp.status_code, _detail(resp))
                    self.counters.refused += 1
                    self.counters.refused_by_status[refusal.status] += 1
                    self.counters.send_failures += 1
                    self.spool.refuse(batch, refusal.text)
                    self._note(refusal, f"set aside in {self.spool.folder}")
                else:  # 429/5xx: the batch is fine, the moment is not
                    self._failed(f"{resp.status_code} {_detail(resp)}")
                    return sent
                sent += 1
                self._backoff = 1.0
            return sent
        finally:
            self._remind()

    @property
    def server(self) -> str:
        return self.servers[self._current]

    def _failed(self, reason: str) -> None:
        self.counters.send_failures += 1
        self.counters.last_failure = reason
        self._current = (self._current + 1) % len(self.servers)
        self._retry_at = self._clock() + self._backoff
        self._backoff = min(self._backoff * 2, 60.0)

    def _note(self, refusal: Refusal, where: str) -> None:
        """Keep what a refusal tells; log it the first time its cause is seen."""
        self.last_refusal = refusal
        self.counters.last_failure = f"{refusal.what}: {refusal.text}"
        self.bound_name = refusal.bound_name or self.bound_name
        # Only a batch's refusal speaks for the run (a heartbeat's 404 may be an older
        # centre); and a batch naming another sensor while this one runs as the bound
        # name is an old one (resent): set aside, but nothing against the present run.
        if (
            refusal.what == "batch"
            and refusal.is_setup
            and refusal.bound_name != self.observer
            and self.setup_refusal is None
        ):
            self.setup_refusal = refusal
        if refusal.cause not in self._told:
            self._told.add(refusal.cause)
            log.warning(
                "the centre refused a %s (%s), %s: %s",
                refusal.what,
                refusal.text,
                where,
                refusal.advice(),
            )
            self._remind_at = self._clock() + REMIND_S
            self._refused_at_reminder = self.counters.refused

    def _remind(self) -> None:
        """Every minute while batches are refused: still capturing, still spooling."""
        now = self._clock()
        if self.last_refusal is None or now < self._remind_at:
            return
        new = self.counters.refused - self._refused_at_reminder
        if new == 0:
            return  # no refusal for a minute: nothing to say
        log.warning(
            "still refused by the centre: %d more batches set aside (%d in all, in %s; "
            "last: %s); capturing and spooling go on. To fix: %s; then `vigia sensor "
            "resend` puts the refused batches back in the queue",
            new,
            self.counters.refused,
            self.spool.folder,
            self.last_refusal.text,
            self.last_refusal.advice(),
        )
        self._remind_at = now + REMIND_S
        self._refused_at_reminder = self.counters.refused

    def heartbeat(self, counters: dict[str, int]) -> bool:
        # Once the centre has said which sensor the token is bound to, beat as that one:
        # the fleet view then shows the sensor that is refused, and why.
        body: dict[str, object] = {
            "observer": self.bound_name or self.observer,
            "counters": counters,
        }
        if self.last_refusal is not None:
            body["last_refusal"] = self.last_refusal.text
        try:
            resp = self._client.post(
                self.server + HEARTBEAT_PATH,
                json=body,
                headers={"Authorization": self._headers["Authorization"]},
            )
        except httpx.HTTPError as exc:
            self.counters.heartbeat_failures += 1
            self.counters.last_failure = f"heartbeat: {self.server}: {exc.__class__.__name__}"
            return False
        if resp.status_code == 200:
            return True
        self.counters.heartbeat_failures += 1
        if resp.status_code in REFUSED:
            self._note(Refusal(resp.status_code, _detail(resp), "heartbeat"), "not recorded")
        else:
            self.counters.last_failure = f"heartbeat: {resp.status_code} {_detail(resp)}"
        return False

    def close(self) -> None:
        """Seal the rest and try once to send; whatever does not go stays spooled."""
        self.flush()
        self.drain(force=True)
        self._client.close()


def _detail(resp: httpx.Response) -> str:
    """The centre's reason: FastAPI's {"detail": ...}, else the start of the body."""
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # a validation error: where, and what
        detail = "; ".join(
            ".".join(str(x) for x in d.get("loc", ())) + f": {d.get('msg', '')}"
            if isinstance(d, dict)
            else str(d)
            for d in detail
        )
    text = str(detail) if detail is not None else (resp.text.strip() or resp.reason_phrase)
    return " ".join(text.split())[:500]


def rename_observer(payload: bytes, name: str) -> bytes:
    """A spooled batch (gzip JSON) with every observation's `observer.name` made `name`:
    for batches refused because the sensor ran under another name than its token's."""
    try:
        batch = orjson.loads(gzip.decompress(payload))
        docs = batch["observations"]
    except (OSError, EOFError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a spooled batch: {exc}") from None
    for doc in docs:
        if isinstance(doc, dict):
            doc.pop("observer.name", None)
            doc["observer"] = {**(doc.get("observer") or {}), "name": name}
    return gzip.compress(orjson.dumps(batch), compresslevel=5)
