"""`GET /api/v1/certification/progress` and the national dashboard
(`/console/certificacion`) on a registry of 10 000 entities.

Generates the constituency of certification/generate.py (known outcomes: 55 %
certified) in a fresh SQLite database — or PostgreSQL with --database-url —
and times both through the whole FastAPI stack (authentication, the queries,
the JSON or the page) after one warm-up call, each call with its own chosen
day (`by`/`fecha`). Then the cold case: each call after a change to an
assessment, so the figures are counted again (certification.progress_cache).

    python bench/certification_progress.py [--entities 10000] [--calls 50]

Target (issue 16): both under 150 ms at 10 000 entities (issue 6: 100 ms at 1 000).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient

from api.app import create_app
from certification import generate
from certification.models import AssessmentRow
from core.clock import utcnow
from core.settings import load_settings
from core.tokens import Role
from vigia.wiring import build


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=10000)
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
        assert client.get("/console/certificacion", headers=headers).status_code == 200

        def timed(url: str, day: int, touch: bool = False) -> float:
            if touch:  # a change: the next read counts the figures again
                with services.db.transaction() as s:
                    a = s.get(AssessmentRow, 1 + day % 100)
                    assert a is not None
                    a.updated_at = utcnow()
            t0 = time.perf_counter()
            r = client.get(url.format(day=f"2028-01-{1 + day % 28:02d}"), headers=headers)
            ms = (time.perf_counter() - t0) * 1000
            assert r.status_code == 200, r.text
            return ms

        api = "/api/v1/certification/progress?by={day}"
        page = "/console/certificacion?fecha={day}"
        results = {
            "progress route": [timed(api, i) for i in range(args.calls)],
            "dashboard page": [timed(page, i) for i in range(args.calls)],
            "progress route, after a change": [timed(api, i, True) for i in range(10)],
            "dashboard page, after a change": [timed(page, i, True) for i in range(10)],
        }
        body = client.get("/api/v1/certification/progress", headers=headers).json()
        services.close()
    print(
        f"{args.entities} entities: {body['certified']}/{body['total']} certified "
        f"({body['ratio']:.0%}), forecast {body['forecast']['month']}; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    for name, times in results.items():
        times.sort()
        p95 = times[max(int(len(times) * 0.95) - 1, 0)]
        print(
            f"{name}: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, "
            f"max {times[-1]:.1f} ms over {len(times)} calls (target < 150 ms)"
        )


if __name__ == "__main__":
    main()
