"""The console's alert queue (issue 15) over 100 000 alerts: a filtered first page
answers in under 200 ms on SQLite and on PostgreSQL.

Fills a fresh store with N alerts (built as the correlator builds them, inserted with
Core executemany): 50 entities, 5 sensors, received over the last 30 days, mixed
statuses, kinds and severities; of each entity's alerts one in 25 is a domain holding
"evil". Then times, median
of 7 after one warm-up:
  - the queries a filtered first page makes (incidents.alert_queue: the page of 50 and
    the counts per status) for entity + received in the last 7 days + text "evil";
  - the same page as the console serves it (GET /console/alertas?entidad=…&
    recibida_desde=…&q=evil, in process, rendered), and
  - for comparison, the unfiltered first page, and a text found nowhere (the entity's
    week read whole).

    python bench/alert_queue.py [--alerts 100000] [--only sqlite|postgresql]

PostgreSQL: a database made (and dropped) on 127.0.0.1:5432 (trust auth), as the
test suite does, unless --database-url names one; after the fill it runs VACUUM
ANALYZE on alerts, as autovacuum would (SQLite: ANALYZE). The machine's load is
part of every figure: print `uptime` beside them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_MS = 200.0
ENTITIES = 50
SENSORS = 5
KINDS = ("domain", "domain", "ip-dst", "url", "sha256")
STATUSES = ("new",) * 14 + ("acknowledged",) * 3 + ("dismissed",) * 2 + ("in_incident",)


def fill(services: Any, n: int, now: datetime) -> None:
    from sqlalchemy import Table, insert

    from certification.registry import Registry
    from correlator.alerts import alert_tlp
    from correlator.rows import AlertRow, queue_columns
    from tests.queue_helpers import Spec, alert_doc

    with services.db.transaction() as session:
        for e in range(ENTITIES):
            Registry.add(session, f"ent-{e:02d}", f"Entidad {e:02d}", "central", [], [], "bench")
    step = timedelta(days=30) / n
    rows: list[dict[str, Any]] = []
    with services.db.transaction() as session:
        for i in range(n):
            evil = "evil-" if (i // ENTITIES) % 25 == 3 else ""
            kind = "domain" if evil else KINDS[(i // 7) % len(KINDS)]
            value = {
                "domain": f"{evil}host{i}.example",
                "ip-dst": f"198.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                "url": f"http://{evil}site{i}.example/p",
                "sha256": f"{i:064x}",
            }[kind]
            e = i % ENTITIES
            spec = Spec(
                i,
                value=value,
                kind=kind,
                entity=(f"ent-{e:02d}", f"Entidad {e:02d}"),
                sensor=f"sensor-{i % SENSORS}",
                confidence=(20, 50, 70, 90)[i % 4],
            )
            doc = alert_doc(spec)
            enr = doc["threat"]["enrichments"][0]
            received = now - timedelta(days=30) + step * i
            rows.append(
                {
                    "id": doc["event"]["id"],
                    "timestamp": received - timedelta(seconds=5),
                    "last_seen": received - timedelta(seconds=5),
                    "observer": doc["observer"]["name"],
                    "matched_type": enr["matched"]["type"],
                    "indicator_type": enr["indicator"]["type"],
                    "entity_id": spec.entity[0] if spec.entity else None,
                    "tlp": alert_tlp(doc),
                    "status": STATUSES[i % len(STATUSES)],
                    "count": 1 + i % 7,
                    "severity": doc["event"]["severity"],
                    "doc": doc,
                    "updated_at": received,
                    "received_at": received,
                    "assignee": None,
                    **queue_columns(doc),
                }
            )
            if len(rows) == 20_000:
                session.execute(insert(cast(Table, AlertRow.__table__)), rows)
                rows = []
        if rows:
            session.execute(insert(cast(Table, AlertRow.__table__)), rows)
    if services.db.engine.dialect.name == "postgresql":
        # As autovacuum leaves a table at rest: statistics, and the visibility map that
        # lets the counts per status read the index alone.
        auto = services.db.engine.execution_options(isolation_level="AUTOCOMMIT")
        with auto.connect() as c:
            c.exec_driver_sql("VACUUM ANALYZE alerts")
    else:
        with services.db.engine.connect() as c:
            c.exec_driver_sql("ANALYZE")


def timed(fn: Callable[[], object], runs: int = 7) -> tuple[float, float]:
    fn()  # warm-up: caches, prepared plans
    took = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        took.append((time.perf_counter() - t) * 1000)
    return statistics.median(took), max(took)


def bench(label: str, database_url: str, n: int) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.settings import load_settings
    from core.tokens import Role
    from incidents import alert_queue
    from tests.conftest import bearer, make_token
    from vigia.wiring import build

    now = datetime.now(UTC).replace(microsecond=0)
    services = build(load_settings(data_dir=Path(tempfile.mkdtemp()), database_url=database_url))
    try:
        t = time.perf_counter()
        fill(services, n, now)
        print(f"{label}: {n} alerts stored in {time.perf_counter() - t:.1f} s")
        week = now - timedelta(days=7)
        cases = {
            "entity + last 7 days + text 'evil'": alert_queue.QueueFilter(
                entity_id="ent-07", received_from=week, text="evil"
            ),
            "unfiltered": alert_queue.QueueFilter(),
            "entity + last 7 days + text found nowhere": alert_queue.QueueFilter(
                entity_id="ent-07", received_from=week, text="nowhere-at-all"
            ),
        }
        for name, f in cases.items():

            def queries(f: alert_queue.QueueFilter = f) -> tuple[int, int]:
                with services.db.transaction() as s:
                    rows, _ = alert_queue.page(s, f)
                    return len(rows), alert_queue.counts(s, f)["all"]

            shown, total = queries()
            median, worst = timed(queries)
            verdict = "ok" if median < TARGET_MS else "OVER"
            print(
                f"{label}: {name}: page {shown} of {total} + counts: "
                f"median {median:.1f} ms, max {worst:.1f} ms ({verdict}, target {TARGET_MS:.0f} ms)"
            )
        client = TestClient(create_app(services))
        who = bearer(make_token(services, Role.ANALYST))
        since = week.strftime("%Y-%m-%dT%H:%M:%S")
        url = f"/console/alertas?entidad=ent-07&recibida_desde={since}&q=evil"

        def page() -> None:
            r = client.get(url, headers=who)
            assert r.status_code == 200, r.status_code

        median, worst = timed(page)
        verdict = "ok" if median < TARGET_MS else "OVER"
        print(
            f"{label}: GET {url} (rendered, in process): median {median:.1f} ms, "
            f"max {worst:.1f} ms ({verdict}, target {TARGET_MS:.0f} ms)"
        )

        def baseline() -> None:  # a console page that reads next to nothing
            assert client.get("/console/sensores", headers=who).status_code == 200

        median, worst = timed(baseline)
        print(f"{label}: for scale, GET /console/sensores: median {median:.1f} ms")
    finally:
        services.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=100_000)
    ap.add_argument("--only", choices=["sqlite", "postgresql"], action="append")
    ap.add_argument("--database-url", default="", help="a PostgreSQL database to use")
    args = ap.parse_args()
    wanted = args.only or ["sqlite", "postgresql"]
    if "sqlite" in wanted:
        bench("sqlite", "", args.alerts)
    if "postgresql" in wanted:
        from bench.taxii_pages import pg_database

        with pg_database(args.database_url) as url:
            bench("postgresql", url, args.alerts)


if __name__ == "__main__":
    main()
