"""`GET /api/v1/certification/progress` and the national dashboard
(`/console/certificacion`) on a registry of 10 000 entities.

Generates the constituency of certification/generate.py (known outcomes: 55 %
certified) in a fresh SQLite database — or PostgreSQL with --database-url —
and times both through the whole FastAPI stack (authentication, the queries,
the JSON or the page) after one warm-up call, each call with its own chosen
day (`by`/`fecha`). Then the cold case: each call after a change (a certificate
suspended, then reinstated, through certification.certificates), so the figures
are counted again (certification.progress_cache) — from certification_state and
certification_trend, kept by certification.progress_state. Beside the wall time,
the process's CPU time per call (the machine is shared: wall time follows the load).

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
from certification import certificates, generate
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

        cpu: dict[str, list[float]] = {}

        def timed(url: str, day: int, touch: bool = False) -> float:
            if touch:  # a change (a certificate suspended, then reinstated): counted again
                with services.db.transaction() as s:
                    action = "suspend" if day % 2 == 0 else "reinstate"
                    certificates.change(s, "VIG-TEST-00000", action, "bench", "bench", utcnow())
            t0, c0 = time.perf_counter(), time.process_time()
            r = client.get(url.format(day=f"2028-01-{1 + day % 28:02d}"), headers=headers)
            ms = (time.perf_counter() - t0) * 1000
            cpu.setdefault(f"{url}{touch}", []).append((time.process_time() - c0) * 1000)
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
        process = dict(zip(results, cpu.values(), strict=True))
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
            f"max {times[-1]:.1f} ms over {len(times)} calls (target < 150 ms); "
            f"CPU median {statistics.median(process[name]):.1f} ms"
        )


if __name__ == "__main__":
    main()
