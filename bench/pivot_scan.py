"""The pivot page's queries (incidents.pivot) over many stored observations.

A value is looked for whole inside the stored JSON documents, with no index: the
observations' count and first/last seen read every row. This prints what that costs
for N observations (each with its own DNS name), on SQLite or on the database named.

    python bench/pivot_scan.py [--observations 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, insert

from core.settings import load_settings
from correlator.rows import ObservationRow
from incidents import pivot
from tests.factories import observation
from vigia.wiring import build

T0 = 1_700_000_000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--observations", type=int, default=100_000)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()
    services = build(
        load_settings(data_dir=Path(tempfile.mkdtemp()), database_url=args.database_url)
    )
    n = args.observations
    with services.db.transaction() as session:
        for start in range(0, n, 50_000):
            rows: list[dict[str, Any]] = [
                {
                    "timestamp": datetime.fromtimestamp(T0 + i, UTC),
                    "observer": "sensor-1",
                    "batch_id": "bench",
                    "doc": observation(ts=T0 + i, dns__question__name=f"host{i}.example"),
                }
                for i in range(start, min(n, start + 50_000))
            ]
            session.execute(insert(cast(Table, ObservationRow.__table__)), rows)
    with services.db.transaction() as session:
        for value in (f"host{n - 1}.example", "absent.example"):
            t = time.perf_counter()
            seen = pivot.observations_with(session, value)
            obs_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            alerts = pivot.alerts_with(session, value, None)
            alert_ms = (time.perf_counter() - t) * 1000
            print(
                f"{args.database_url or 'sqlite'}: {n} observations, {value}: "
                f"{seen.count} seen in {obs_ms:.0f} ms, {len(alerts)} alerts in {alert_ms:.0f} ms"
            )
    services.close()


if __name__ == "__main__":
    main()
