"""Start-up of a centre holding many indicators: nothing waits on the index.

Fills a fresh database with N indicators (one Core executemany per 50 000 rows,
mixed kinds: domains, hostnames, addresses, networks, URLs, md5/sha1/sha256,
e-mail), starts `vigia serve` on it, and measures from the process's start:
when `/health` answers, the first ingest's answer and latency (503 with
Retry-After while the index loads), how long `/ready` stays 503, and that an
observation matching one of the indicators gives an alert once ready.

    python bench/startup_index.py [--indicators 1000000] [--database-url URL]

Targets (issues 12 and 17): `/health` at once, no request held over 1 s while
the index loads.
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROVIDER = "bench-feed"
HIT = "c2.bench-hit.example"  # always among the indicators: the alert the bench looks for


def _rows(n: int) -> Iterator[dict[str, Any]]:
    """n indicator rows of realistic kinds and lengths, distinct, HIT first."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    common = {
        "provider": PROVIDER,
        "to_ids": True,
        "confidence": 70,
        "tlp": "amber",
        "event": "bench",
        "threat_level": 2,
        "first_seen": None,
        "last_seen": None,
        "expires": None,
        "comment": "",
        "loaded_at": now,
        "changed_in": 1,
    }
    yield {**common, "type": "domain", "value": HIT}
    for i in range(1, n):
        k = i % 9
        if k == 0:
            t, v = "domain", f"d{i}.malicious-{i % 977}.example"
        elif k == 1:
            t, v = "hostname", f"host{i}.cdn{i % 331}.example.net"
        elif k == 2:
            t, v = "ip-dst", f"{10 + i % 200}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        elif k == 3:
            t, v = "ip-dst", f"{100 + i % 100}.{(i >> 8) & 255}.{i & 255}.0/24"
        elif k == 4:
            t, v = "url", f"http://u{i}.phish.example/login/{i:x}/index.php?id={i}"
        elif k == 5:
            t, v = "md5", f"{i:032x}"
        elif k == 6:
            t, v = "sha1", f"{i:040x}"
        elif k == 7:
            t, v = "sha256", f"{i:064x}"
        else:
            t, v = "email-src", f"sender{i}@spam{i % 97}.example.org"
        yield {**common, "type": t, "value": v}


def fill_indicators(data_dir: Path, database_url: str, n: int) -> dict[str, str]:
    """Migrate a fresh database, bulk-insert n indicators, create the tokens;
    returns the environment for `vigia` processes on it and the tokens."""
    from sqlalchemy import Table, insert

    from core.settings import load_settings
    from core.tokens import Role
    from correlator.rows import IndicatorRow
    from correlator.store import IndicatorStore
    from vigia.wiring import build

    env = {**os.environ, "VIGIA_DATA_DIR": str(data_dir), "VIGIA_DATABASE_URL": database_url}
    services = build(load_settings(data_dir=data_dir, database_url=database_url))
    try:
        table = cast(Table, IndicatorRow.__table__)
        with services.db.transaction() as session:
            IndicatorStore._bump(session)  # version 1: the rows below carry it
            chunk: list[dict[str, Any]] = []
            for row in _rows(n):
                chunk.append(row)
                if len(chunk) == 50_000:
                    session.execute(insert(table), chunk)
                    chunk = []
            if chunk:
                session.execute(insert(table), chunk)
            tokens = {
                "sensor": services.tokens.create(session, Role.SENSOR, "edge-1", None, "bench")[0],
                "analyst": services.tokens.create(session, Role.ANALYST, "ana", None, "bench")[0],
            }
    finally:
        services.close()
    return {**env, **{f"token_{k}": v for k, v in tokens.items()}}


def observation(name: str, seq: int) -> dict[str, Any]:
    return {
        "@timestamp": "2026-01-01T00:00:00.000000Z",
        "observer": {"name": "edge-1"},
        "source": {"ip": "10.9.8.7", "port": 40000 + seq},
        "destination": {"ip": "192.0.2.53", "port": 53},
        "network": {"transport": "udp", "community_id": f"1:bench{seq}", "protocol": "dns"},
        "dns": {"question": {"name": name}},
    }


def batch(batch_id: str, docs: list[dict[str, Any]]) -> bytes:
    return gzip.compress(orjson.dumps({"batch_id": batch_id, "observations": docs}))


@dataclass
class Startup:
    """What a start-up looked like, in seconds from the process's start."""

    health_at: float = 0.0
    first_ingest_status: int = 0
    first_ingest_latency: float = 0.0
    first_ingest_retry_after: str | None = None
    ready_at: float = 0.0
    # the longest each kind of request (ingest, health, ready) took before ready
    slowest_during_load: dict[str, float] = field(default_factory=dict)
    statuses_while_loading: set[int] = field(default_factory=set)
    ready_body: dict[str, Any] = field(default_factory=dict)
    alerts_after: int = 0
    timeouts: int = 0  # ingests unanswered within the client's 30 s


def serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in env.items() if not k.startswith("token_")}
    with log.open("wb") as err:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "vigia", "serve", "--port", str(port)],
            env=clean,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def measure(env: dict[str, str], port: int, timeout_s: float = 120.0) -> Startup:
    """Start `vigia serve`, watch it become ready, ingest a hit; the process is stopped."""
    url = f"http://127.0.0.1:{port}"
    sensor = {
        "Authorization": f"Bearer {env['token_sensor']}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    out = Startup()
    run = uuid.uuid4().hex[:8]  # batch ids of this run (a kept database is measured again)
    t0 = time.monotonic()
    log = Path(env["VIGIA_DATA_DIR"]) / "serve.log"
    proc = serve(env, port, log)
    try:
        with httpx.Client(timeout=30) as client:
            while True:  # the process is up when /health answers
                if proc.poll() is not None:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"vigia serve exited {proc.returncode}: {tail}")
                try:
                    if client.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() - t0 > timeout_s:
                    raise RuntimeError("/health did not answer")
                time.sleep(0.02)
            out.health_at = time.monotonic() - t0
            seq = 0
            while True:  # ingest, /health and /ready in turn until ready; each timed
                seq += 1
                start = time.monotonic()
                try:
                    r = client.post(
                        url + "/api/v1/observations",
                        content=batch(
                            f"bench-{run}-{seq:05d}", [observation("quiet.example", seq)]
                        ),
                        headers=sensor,
                    )
                except httpx.TimeoutException:
                    out.timeouts += 1
                    continue
                took = {"ingest": time.monotonic() - start}
                if seq == 1:
                    out.first_ingest_status, out.first_ingest_latency = (
                        r.status_code,
                        took["ingest"],
                    )
                    out.first_ingest_retry_after = r.headers.get("retry-after")
                start = time.monotonic()
                client.get(url + "/health").raise_for_status()
                took["health"] = time.monotonic() - start
                start = time.monotonic()
                ready = client.get(url + "/ready")
                took["ready"] = time.monotonic() - start
                if ready.status_code == 200:
                    out.ready_at = time.monotonic() - t0
                    out.ready_body = ready.json()
                    break
                for k, v in took.items():
                    out.slowest_during_load[k] = max(out.slowest_during_load.get(k, 0.0), v)
                out.statuses_while_loading.update({r.status_code, ready.status_code})
                if time.monotonic() - t0 > timeout_s:
                    raise RuntimeError(f"not ready within {timeout_s} s: {ready.text}")
                time.sleep(0.2)
            r = client.post(
                url + "/api/v1/observations",
                content=batch(f"bench-{run}-hit", [observation(HIT, 0)]),
                headers=sensor,
            )
            r.raise_for_status()
            out.alerts_after = int(r.json()["alerts"])
    finally:
        stop(proc)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--indicators", type=int, default=1_000_000)
    ap.add_argument("--database-url", default="", help="default: SQLite in a temporary folder")
    ap.add_argument("--keep", type=Path, help="fill this folder once, measure it on each run")
    args = ap.parse_args()
    from tests.centre import free_port

    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        saved = where / "bench-env.json"
        if args.keep and saved.exists():  # filled by an earlier run: measure again
            env = {**os.environ, **orjson.loads(saved.read_bytes())}
        else:
            where.mkdir(parents=True, exist_ok=True)
            url = args.database_url or f"sqlite:///{where / 'vigia.db'}"
            t = time.monotonic()
            env = fill_indicators(where / "data", url, args.indicators)
            print(f"{args.indicators} indicators inserted in {time.monotonic() - t:.1f} s")
            mine = {k: v for k, v in env.items() if k.startswith(("token_", "VIGIA_"))}
            saved.write_bytes(orjson.dumps(mine))
        s = measure(env, free_port())
    print(f"/health answered          {s.health_at:6.2f} s after start")
    print(
        f"first ingest              {s.first_ingest_status} in {s.first_ingest_latency:.3f} s "
        f"(Retry-After: {s.first_ingest_retry_after})  target < 1 s"
    )
    for kind, took in sorted(s.slowest_during_load.items()):
        print(f"slowest {kind:<7} in load  {took:6.3f} s  target < 1 s")
    print(f"ready (/ready 200)        {s.ready_at:6.2f} s after start  {s.ready_body}")
    print(f"a hit once ready          {s.alerts_after} alert(s)")
    print(f"ingests timed out (30 s)  {s.timeouts}")


if __name__ == "__main__":
    main()
