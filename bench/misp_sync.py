"""MISP sync at scale (issue 17): N to_ids attributes in events of E each, served by the
MISP stand-in (tests/mispserver.py, MISP's REST shapes) in its own process on
loopback, pulled by `vigia indicators sync` in its own process, as users run it, into
a fresh centre (SQLite, or PostgreSQL with --postgresql) whose schema and warninglists
were made before. Prints each run's wall time, CPU and peak RSS (the process's own,
by wait4) beside the issue's targets for 1 M (30 s, 500 MB; an unchanged re-import
15 s): the first sync, the same again (nothing changed since), and --full again.

    python bench/misp_sync.py [--attributes 100000] [--per-event 1000] [--postgresql]
"""

from __future__ import annotations

import argparse
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
    from tests.mispserver import KEY
    from vigia.wiring import build

    with tempfile.TemporaryDirectory(prefix="vigia-misp-") as name:
        tmp = Path(name)
        write_events(tmp / "events.json", args.attributes, args.per_event)
        port = free_port()
        stand_in = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(tmp / "events.json"), str(port)]
        )
        db_name = None
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
            # The schema made and the warninglists compiled into the data folder's cache
            # before timing, as on a centre that has run before.
            services = build(load_settings(data_dir=tmp / "d", database_url=db_url))
            services.warninglists.get()
            services.close()
            (tmp / "misp.key").write_text(KEY)
            env = {**os.environ, "VIGIA_DATA_DIR": str(tmp / "d"), "VIGIA_DATABASE_URL": db_url}
            sync = [sys.executable, "-m", "vigia", "indicators", "sync", "--misp-url", url]
            sync += ["--misp-key-file", str(tmp / "misp.key")]
            backend = "PostgreSQL" if args.postgresql else "SQLite"
            events = max(1, args.attributes // args.per_event)
            first = run(sync, env)
            print(
                f"{backend}: `vigia indicators sync` of {args.attributes:,} attributes in "
                f"{events} events: {first} (targets for 1 M: 30 s, peak RSS 500 MB); "
                f"load {os.getloadavg()[0]:.1f}"
            )
            print(f"  again, nothing changed since: {run(sync, env)}")
            print(
                f"  --full, nothing changed: {run([*sync, '--full'], env)} "
                "(target for a re-import of 1 M: 15 s)"
            )
        finally:
            stand_in.terminate()
            stand_in.wait()
            drop(db_name)


def run(command: list[str], env: dict[str, str]) -> str:
    """The command as a process: its wall time, CPU and peak RSS (its own, by wait4),
    and the summary line it printed."""
    wall = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    said = proc.stderr.read().decode().strip().splitlines()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - wall
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)}: exit {proc.returncode}: {said[-1:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return (
        f"{wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {usage.ru_maxrss / 1024:.0f} MB "
        f"[{said[-1] if said else ''}]"
    )


if __name__ == "__main__":
    main()
