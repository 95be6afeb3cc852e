"""What the brute-force throttle adds to every bearer check.

Times `api.deps.check_token` (the throttle's read, then the token's lookup, in
one read transaction) against the token lookup alone, on a fresh SQLite
database (or a scratch PostgreSQL database with --database-url: it is migrated
and written), alternating the two so that a busy machine weighs on both alike.

    python bench/auth_check.py [--checks 2000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.requests import Request

from api.deps import check_token
from core.settings import load_settings
from core.tokens import Role
from vigia.wiring import build


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checks", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        services = build(load_settings(data_dir=Path(tmp), database_url=args.database_url))
        with services.db.transaction() as session:
            token, _ = services.tokens.create(session, Role.SENSOR, "bench", None, "bench")
        scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
        request = Request({**scope, "client": ("192.0.2.1", 1)})

        def alone() -> None:
            with services.db.transaction(write=False) as session:
                services.tokens.authenticate(session, token)

        def throttled() -> None:
            check_token(request, services, token)

        runs: dict[str, list[float]] = {"token lookup alone": [], "with the throttle": []}
        checks: list[tuple[str, Callable[[], None]]] = [
            ("token lookup alone", alone),
            ("with the throttle", throttled),
        ]
        for _ in range(args.rounds):
            for label, fn in checks:
                t0 = time.perf_counter()
                for _ in range(args.checks):
                    fn()
                runs[label].append((time.perf_counter() - t0) / args.checks * 1e6)
        for label, us in runs.items():
            print(f"{label}: median {statistics.median(us):.0f} µs per check")
        services.close()


if __name__ == "__main__":
    main()
