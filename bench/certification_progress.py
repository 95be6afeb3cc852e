"""`GET /api/v1/certification/progress` on a registry of 1 000 entities.

Generates the constituency of certification/generate.py (known outcomes: 55 %
certified) in a fresh SQLite database — or PostgreSQL with --database-url —
and times the route through the whole FastAPI stack (authentication, the
queries, the JSON), after one warm-up call.

    python bench/certification_progress.py [--entities 1000] [--calls 50]

Target (issue 6): under 100 ms at 1 000 entities.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient

from api.app import create_app
from certification import generate
from core.clock import utcnow
from core.settings import load_settings
from core.tokens import Role
from vigia.wiring import build


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=1000)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        services = build(load_settings(data_dir=Path(tmp), database_url=args.database_url))
        with services.db.transaction() as s:
            generate.constituency(s, args.entities, utcnow(), "2026.1")
            token, _ = services.tokens.create(s, Role.ANALYST, "bench", None, "bench")
        client = TestClient(create_app(services))
        headers = {"Authorization": f"Bearer {token}"}
        first = client.get("/api/v1/certification/progress", headers=headers)
        assert first.status_code == 200, first.text
        times = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            r = client.get("/api/v1/certification/progress", headers=headers)
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200
        body = r.json()
        services.close()
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1]
    print(
        f"{args.entities} entities: {body['certified']}/{body['total']} certified "
        f"({body['ratio']:.0%}), forecast {body['forecast']['month']}"
    )
    print(
        f"progress route: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, "
        f"max {times[-1]:.1f} ms over {args.calls} calls (target < 100 ms)"
    )


if __name__ == "__main__":
    main()
