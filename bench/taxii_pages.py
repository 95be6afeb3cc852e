"""TAXII pages over a large collection: the millionth object costs what the first does.

Fills a fresh database with N GREEN indicators (Core executemany, 50 000 rows a
statement; a thousand share each `loaded_at`, so the keyset's ties are exercised),
serves the centre on loopback, and times, as a peer CERT through HTTP: the first
page of the peers' GREEN collection, a page from a `next` token halfway through,
and 20 consecutive pages from there; then prints PostgreSQL's plan for that
deep page (an index scan on ix_indicators_tlp_loaded, no sort).

    python bench/taxii_pages.py [--indicators 1000000] [--limit 1000] [--database-url URL]

Without --database-url it makes (and drops) a PostgreSQL database on
127.0.0.1:5432 (trust auth), as the test suite does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TAXII = "application/taxii+json;version=2.1"


@contextmanager
def pg_database(url: str) -> Iterator[str]:
    """The given database, or a fresh PostgreSQL one dropped afterwards."""
    if url:
        yield url
        return
    import sqlalchemy as sa

    from tests.conftest import PG_ADMIN_URL

    name = f"vigia_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def fill(services: Any, n: int) -> None:
    from sqlalchemy import insert

    from correlator.rows import IndicatorRow

    start = datetime.now(UTC) - timedelta(days=1)
    chunk: list[dict[str, Any]] = []
    with services.db.transaction() as session:
        for i in range(n):
            chunk.append(
                {
                    "type": "ip-dst",
                    "value": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                    "provider": f"bench-{i >> 24}",
                    "to_ids": True,
                    "confidence": 70,
                    "tlp": "green",
                    "event": "bench",
                    "threat_level": 2,
                    "comment": "",
                    "loaded_at": start + timedelta(milliseconds=i // 1000),
                    "changed_in": 1,
                }
            )
            if len(chunk) == 50_000:
                session.execute(insert(IndicatorRow), chunk)
                chunk = []
        if chunk:
            session.execute(insert(IndicatorRow), chunk)


def deep_key(services: Any, n: int) -> str:
    """The `next` token a client would hold halfway through the collection."""
    from sqlalchemy import select

    from correlator.rows import IndicatorRow
    from incidents import taxii

    with services.db.transaction(write=False) as s:
        added, rid = s.execute(
            select(IndicatorRow.loaded_at, IndicatorRow.id)
            .order_by(IndicatorRow.loaded_at, IndicatorRow.id)
            .offset(n // 2)
            .limit(1)
        ).one()
    return taxii.Key(added, taxii.INDICATORS, rid).encode()


def plan(services: Any, cursor: str, limit: int) -> str:
    from sqlalchemy.dialects import postgresql

    from core.clock import utcnow
    from incidents import taxii

    c = next(x for x in taxii.collections(taxii.Reader(peer=True)) if x.alias == "peers-green")
    q = taxii._indicator_rows(c, taxii.Key.decode(cursor), None, utcnow(), limit + 1)
    sql = str(q.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with services.db.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql).fetchall()
    return "\n".join(r[0] for r in rows)


def timed(client: httpx.Client, url: str, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    r = client.get(url, params=params)
    took = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    return took, r.json()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--indicators", type=int, default=1_000_000)
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()

    from api.app import create_app
    from core.settings import load_settings
    from core.tokens import Role
    from vigia.wiring import build

    with tempfile.TemporaryDirectory() as tmp, pg_database(args.database_url) as url:
        services = build(load_settings(data_dir=Path(tmp), database_url=url))
        t0 = time.perf_counter()
        fill(services, args.indicators)
        print(f"filled {args.indicators} indicators in {time.perf_counter() - t0:.1f} s")
        with services.db.transaction() as s:
            token, _ = services.tokens.create(s, Role.PEER, "bench-peer", None, "bench")
        with services.db.engine.begin() as conn:  # what autovacuum would have done
            conn.exec_driver_sql("ANALYZE indicators")
        from tests.centre import ServerThread, free_port

        with ServerThread(create_app(services), free_port()) as server:
            h = {"Authorization": f"Bearer {token}", "Accept": TAXII}
            with httpx.Client(headers=h, timeout=120) as client:
                root = f"{server.url}/taxii2/vigia/collections/"
                cols = client.get(root).json()["collections"]
                green = next(c["id"] for c in cols if c["alias"] == "peers-green")
                objects = f"{root}{green}/objects/"
                limit = {"limit": args.limit}
                first = [timed(client, objects, limit)[0] for _ in range(3)]
                cursor = deep_key(services, args.indicators)
                deep = [timed(client, objects, {**limit, "next": cursor})[0] for _ in range(3)]
                walk: list[float] = []
                served, nxt = 0, cursor
                while nxt and len(walk) < 20:
                    took, body = timed(client, objects, {**limit, "next": nxt})
                    walk.append(took)
                    served += len(body.get("objects", []))
                    nxt = str(body["next"]) if body.get("next") else ""
        print(f"first page ({args.limit} objects): median {statistics.median(first) * 1000:.0f} ms")
        print(f"a page {args.indicators // 2} objects in: ", end="")
        print(f"median {statistics.median(deep) * 1000:.0f} ms")
        print(
            f"then {len(walk)} pages on: {served} objects, "
            f"median {statistics.median(walk) * 1000:.0f} ms, max {max(walk) * 1000:.0f} ms"
        )
        if services.db.engine.dialect.name == "postgresql":
            print(plan(services, cursor, args.limit))
        services.close()


if __name__ == "__main__":
    main()
