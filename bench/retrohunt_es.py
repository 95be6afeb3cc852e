"""Retro-hunt of new indicators over observations held in Elasticsearch (issue 17).

Starts `noida-db` (the Elasticsearch REST API on loopback, as the tests do),
stores N DNS observations through the centre's own mirror
(`EsTelemetry.store_observations`, bulk batches of 5 000), `--hits` of them
naming one of the new indicators; then times the hunt as an import runs it
(`correlator.eshunt.EsHunt` pages into `retro_hunt`) over M mixed indicators
(bench/indicators_centre.generate). Prints fill time, hunt wall and CPU time
(this process; noida-db's CPU apart), documents scanned and alerts, with the
load average (other processes share the 2 cores).

    python bench/retrohunt_es.py [--observations 200000] [--indicators 100000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.indicators_centre import HIT, generate  # noqa: E402


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def start_noida(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("noida-db") or str(Path(sys.executable).parent / "noida-db")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "start", "--only", "elasticsearch", "--elasticsearch-port", str(port),
         "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("noida-db did not start")


def group_cpu_s(pid: int) -> float:
    """CPU of a process and its children still alive (noida-db runs under a wrapper)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pid or int(entry.name) == pid:  # pgrp
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def docs(n: int, hits: int, now: datetime) -> list[dict[str, object]]:
    step = max(1, n // max(hits, 1))
    out: list[dict[str, object]] = []
    for g in range(1, n + 1):
        ts = (now - timedelta(seconds=g % 86000)).isoformat().replace("+00:00", "Z")
        name = HIT if g % step == 0 else f"q{g}.quiet.example"
        out.append(
            {
                "@timestamp": ts,
                "observer": {"name": "edge-1"},
                "source": {"ip": f"10.{g >> 16 & 255}.{g >> 8 & 255}.{g & 255}",
                           "port": 1024 + g % 60000},
                "destination": {"ip": "192.0.2.53", "port": 53},
                "network": {"transport": "udp", "protocol": "dns", "community_id": f"1:b{g}"},
                "dns": {"question": {"name": name}},
            }
        )  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--observations", type=int, default=200_000)
    ap.add_argument("--indicators", type=int, default=100_000)
    ap.add_argument("--hits", type=int, default=1000)
    args = ap.parse_args()

    from elasticsearch import Elasticsearch

    from core.settings import load_settings
    from core.telemetry import Telemetry
    from correlator.eshunt import EsHunt
    from correlator.esstore import OBSERVATIONS, EsTelemetry
    from correlator.retrohunt import retro_hunt
    from rules.sources import load_indicator_file
    from vigia.wiring import build

    with tempfile.TemporaryDirectory(prefix="vigia-eshunt-") as name:
        tmp = Path(name)
        proc, url = start_noida(tmp / "noida")
        try:
            client = Elasticsearch(url, request_timeout=120)
            es = EsTelemetry(client, 30)
            es.init()
            print(f"{args.observations} observations, {args.indicators} indicators", flush=True)
            wall, es_cpu = time.monotonic(), group_cpu_s(proc.pid)
            now = datetime.now(UTC)
            every = docs(args.observations, args.hits, now)
            for at in range(0, len(every), 5000):
                es.store_observations(f"bench-{at}", every[at : at + 5000])
            client.indices.refresh(index=OBSERVATIONS)
            del every
            print(
                f"  stored in {time.monotonic() - wall:.0f} s "
                f"(noida-db CPU {group_cpu_s(proc.pid) - es_cpu:.0f} s, {load()})",
                flush=True,
            )
            csv = tmp / "indicators.csv"
            generate(csv, args.indicators)
            indicators = load_indicator_file(csv, strict=False).indicators
            s = build(load_settings(data_dir=tmp / "data", database_url=""))
            hunt_in = EsHunt(client, Telemetry())
            wall, es_cpu = time.monotonic(), group_cpu_s(proc.pid)
            cpu = resource.getrusage(resource.RUSAGE_SELF)
            with s.db.transaction() as session:
                hunt = retro_hunt(session, indicators, 2, 3600, stored=hunt_in(session))
            after = resource.getrusage(resource.RUSAGE_SELF)
            wall = time.monotonic() - wall
            mine = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
            print(
                f"  retro-hunt: {wall:.1f} s wall, {mine:.1f} s CPU here, "
                f"{group_cpu_s(proc.pid) - es_cpu:.1f} s CPU in noida-db   ({load()})\n"
                f"  {hunt.observations} candidate documents read, {hunt.alerts} alerts "
                f"(planted: {args.hits} observations naming one indicator)",
                flush=True,
            )
            s.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
