"""MISP sync at scale (issue 17): N to_ids attributes in events of E each, served by the
MISP stand-in (tests/mispserver.py, MISP's REST shapes) in its own process on
loopback, pulled by `correlator.misp.sync` into a fresh SQLite centre in this one.
Prints wall and CPU time and this process's peak RSS during the sync (VmHWM, reset
just before it) and over the centre before it, beside the issue's targets for 1 M
(30 s, 500 MB).

    python bench/misp_sync.py [--attributes 100000] [--per-event 1000] [--postgresql]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.indicators_centre import database, drop  # noqa: E402  (the same fresh databases)

KINDS = ("ip-dst", "domain", "md5")


def _attribute(k: int) -> dict[str, Any]:
    kind = KINDS[k % 3]
    value = {
        "ip-dst": f"{1 + k % 223}.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}",
        "domain": f"bad{k:x}.example{k % 17}.org",
        "md5": f"{k:032x}",
    }[kind]
    return {
        "id": str(k), "uuid": f"00000000-0000-4000-8000-{k:012x}", "type": kind,
        "category": "Network activity", "value": value, "to_ids": True,
        "timestamp": "1700000000", "distribution": "5", "comment": "",
    }  # fmt: skip


def write_events(path: Path, attributes: int, per_event: int) -> None:
    """The events as a JSON list, written an event at a time (this process's peak RSS is
    the sync's, not the test data's)."""
    with path.open("w") as out:
        out.write("[")
        for e in range(max(1, attributes // per_event)):
            attrs = [_attribute(e * per_event + i) for i in range(per_event)]
            event = {
                "Event": {
                    "id": str(e + 1),
                    "uuid": f"10000000-0000-4000-8000-{e:012x}",
                    "info": f"bench {e}",
                    "published": True,
                    "timestamp": str(1_700_000_000 + e),
                    "date": "2026-12-01",
                    "threat_level_id": "2",
                    "analysis": "2",
                    "distribution": "3",
                    "Tag": [{"name": "tlp:green"}],
                    "Attribute": attrs,
                    "Orgc": {"name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
                }
            }
            out.write(("," if e else "") + json.dumps(event))
        out.write("]")


def _rss(field: str) -> float:
    """VmRSS / VmHWM of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def serve(path: str, port: int) -> None:
    from tests.mispserver import MispOnLoopback

    with MispOnLoopback(json.loads(Path(path).read_text()), port):
        while True:
            time.sleep(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--attributes", type=int, default=100_000)
    ap.add_argument("--per-event", type=int, default=1000)
    ap.add_argument("--postgresql", action="store_true", help="a fresh PostgreSQL database")
    ap.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)  # the stand-in's process
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return

    from core.settings import load_settings
    from correlator import misp
    from rules.sources.mispsync import MispServer
    from tests.mispserver import KEY
    from vigia.wiring import build

    with tempfile.TemporaryDirectory(prefix="vigia-misp-") as name:
        tmp = Path(name)
        write_events(tmp / "events.json", args.attributes, args.per_event)
        port = free_port()
        stand_in = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(tmp / "events.json"), str(port)]
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    httpx.get(url + "/servers/getVersion", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            db_url, db_name = database("postgresql" if args.postgresql else "sqlite", tmp)
            services = build(load_settings(data_dir=tmp / "d", database_url=db_url))
            services.warninglists.get()  # compiled (or read from the cache) before timing
            gc.collect()
            Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts here
            before = _rss("VmRSS")
            server = MispServer(url, KEY)
            wall, cpu = time.monotonic(), time.process_time()
            out = misp.sync(services.db, services.take_in, server)
            wall, cpu = time.monotonic() - wall, time.process_time() - cpu
            peak = _rss("VmHWM")
            backend = "PostgreSQL" if args.postgresql else "SQLite"
            print(
                f"{backend}: {args.attributes:,} attributes in "
                f"{max(1, args.attributes // args.per_event)} events: {out.intake.loaded:,} "
                f"taken in, {wall:.1f} s wall, {cpu:.1f} s CPU (target for 1 M: 30 s), peak "
                f"RSS {peak:.0f} MB, +{peak - before:.0f} MB over the centre before it "
                f"(target for 1 M: 500 MB peak); load {os.getloadavg()[0]:.1f}"
            )
            wall = time.monotonic()
            since = misp.sync(services.db, services.take_in, server)
            print(
                f"  sync again (what changed since: nothing): {time.monotonic() - wall:.2f} s "
                f"wall ({since.intake.loaded} read)"
            )
            # Everything again (--full), nothing changed: the re-import's case (15 s).
            wall = time.monotonic()
            again = misp.sync(services.db, services.take_in, server, full=True)
            print(
                f"  full sync again, nothing changed: {time.monotonic() - wall:.1f} s wall "
                f"({again.intake.new} new; target for a re-import of 1 M: 15 s)"
            )
            services.close()
            drop(db_name)
        finally:
            stand_in.terminate()
            stand_in.wait()


if __name__ == "__main__":
    main()
