"""Operations: /metrics and /ready, job leases across replicas, and the store going
away for real (a TCP relay to PostgreSQL cut and restored): ingest answers 503 with
Retry-After, the sensor keeps its batches, nothing is lost or doubled on return."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.settings import load_settings
from core.tokens import Role
from correlator.rows import ObservationRow
from correlator.store import IndicatorStore
from rules.indicator import Indicator
from sensors.observation import Observation
from sensors.ship import Shipper
from sensors.spool import Spool
from tests.centre import Centre, free_port
from tests.conftest import PG_ADMIN_URL, bearer, make_token
from tests.factories import observation
from tests.tcpproxy import TcpProxy
from vigia import scheduler
from vigia.wiring import Services, build


def test_metrics_and_readiness(client: TestClient, services: Services) -> None:
    with services.db.transaction() as s:
        IndicatorStore.save(s, [Indicator("hostname", "evil.example", "feed", confidence=70)])
    sensor = bearer(make_token(services, Role.SENSOR, name="sensor-1"))
    docs = [observation(dns__question__name="evil.example"), observation()]
    r = client.post(
        "/api/v1/observations",
        json={"batch_id": "batch-m-0001", "observations": docs},
        headers=sensor,
    )
    assert r.status_code == 200
    client.post(
        "/api/v1/observations",
        json={"batch_id": "batch-m-0001", "observations": docs},
        headers=sensor,
    )
    assert (
        scheduler.run_job(
            services, "incidents", scheduler.incidents_job, timedelta(seconds=30), True
        )
        == "ok"
    )
    assert client.get("/metrics").status_code == 401
    assert (
        client.get("/metrics", headers=bearer(make_token(services, Role.ANALYST))).status_code
        == 403
    )
    text = client.get("/metrics", headers=bearer(make_token(services, Role.AUDITOR))).text
    lines = set(text.splitlines())
    assert "vigia_ingest_observations_total 2.0" in lines
    assert "vigia_ingest_batches_duplicate_total 1.0" in lines
    assert "vigia_indicators_indexed 1.0" in lines
    assert 'vigia_alerts{status="in_incident"} 1.0' in lines
    assert 'vigia_incidents_open{priority="P3"} 1.0' in lines
    assert 'vigia_queue_depth{queue="notifications"} 0.0' in lines
    assert 'vigia_job_runs_total{job="incidents",outcome="ok"} 1.0' in lines
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    assert client.get("/health").json() == {"status": "ok"}


def _url(port: int, name: str) -> str:
    return PG_ADMIN_URL.rsplit("@", 1)[0] + f"@127.0.0.1:{port}/{name}"


def test_two_replicas_run_a_shared_job_once_per_interval(tmp_path: Path, pg_db: str) -> None:
    a = build(load_settings(data_dir=tmp_path / "a", database_url=_url(5432, pg_db)))
    b = build(load_settings(data_dir=tmp_path / "b", database_url=_url(5432, pg_db)))
    runs: list[str] = []
    every = timedelta(seconds=2)

    def job(s: Services) -> None:
        runs.append(s.settings.data_dir.name)

    try:
        from core import leases

        # Two processes: two holders (in one test process, name them).
        assert leases.acquire(a.db, "demo", every * 0.9, holder="replica-a")
        assert not leases.acquire(b.db, "demo", every * 0.9, holder="replica-b")
        assert leases.acquire(a.db, "demo", every * 0.9, holder="replica-a")  # its own, renewed
        # Through the scheduler's runner: the first replica runs, the second skips.
        assert scheduler.run_job(a, "shared", job, every, True) == "ok"
        from core.leases import JobLease

        with b.db.transaction() as s:  # as another process would hold it
            s.get(JobLease, "shared").holder = "replica-elsewhere"
        assert scheduler.run_job(b, "shared", job, every, True) == "skipped"
        assert runs == ["a"] and b.telemetry.jobs["shared"].skipped == 1
        with b.db.transaction() as s:
            lease = s.get(JobLease, "shared")
            assert lease.last_outcome == "ok" and lease.last_run is not None
            lease.until = lease.until - timedelta(seconds=5)  # the interval has passed
        assert scheduler.run_job(b, "shared", job, every, True) == "ok"
        assert runs == ["a", "b"]
        assert scheduler.run_job(b, "own", job, every, False) == "ok"  # per-replica jobs never skip
    finally:
        a.close()
        b.close()


def _stored(services: Services) -> tuple[int, int]:
    with services.db.transaction(write=False) as s:
        total = s.scalar(sa.select(sa.func.count()).select_from(ObservationRow)) or 0
        batches = s.scalar(sa.select(sa.func.count(sa.distinct(ObservationRow.batch_id)))) or 0
    return total, batches


def test_the_store_goes_away_and_comes_back(tmp_path: Path, pg_db: str) -> None:
    proxy = TcpProxy(5432).start()
    services = build(load_settings(data_dir=tmp_path / "d", database_url=_url(proxy.port, pg_db)))
    token = make_token(services, Role.SENSOR, name="edge-1")
    centre = Centre(services, free_port()).__enter__()
    shipper = Shipper(centre.url, token, Spool(tmp_path / "spool"), "edge-1", batch_size=10)

    def ship(n: int, first: int) -> None:
        for i in range(n):
            doc = observation(ts=1_700_000_000.0 + first + i, observer="edge-1")
            shipper.add(Observation.from_ecs(doc))
        shipper.flush()

    try:
        ship(10, 0)
        assert shipper.drain(force=True) == 1 and _stored(services) == (10, 1)
        proxy.stop()  # PostgreSQL is gone
        ship(20, 100)
        assert shipper.drain(force=True) == 0  # kept in the spool
        assert shipper.counters.send_failures == 1
        import httpx

        direct: Any = httpx.post(
            centre.url + "/api/v1/observations",
            json={"batch_id": "batch-direct-01", "observations": []},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert direct.status_code == 503 and direct.headers["retry-after"] == "5"
        assert httpx.get(centre.url + "/ready").status_code == 503
        assert httpx.get(centre.url + "/health").status_code == 200  # alive, not ready
        proxy.start()  # back, on the same port
        assert shipper.drain(force=True) == 2
        assert _stored(services) == (30, 3)  # nothing lost, nothing doubled
        assert shipper.drain(force=True) == 0
        assert httpx.get(centre.url + "/ready").status_code == 200
    finally:
        centre.__exit__()
        proxy.stop()
        services.close()


def test_two_replicas_one_store_failover_and_no_duplicates(tmp_path: Path, pg_db: str) -> None:
    import gzip

    import httpx
    import orjson

    secret = "replicas-share-this-secret-0123456789abcdef"
    a, b = (
        build(
            load_settings(data_dir=tmp_path / n, database_url=_url(5432, pg_db), secret_key=secret)
        )
        for n in ("a", "b")
    )
    ca, cb = Centre(a, free_port()).__enter__(), Centre(b, free_port()).__enter__()
    try:
        analyst = make_token(a, Role.ANALYST)
        sensor = make_token(a, Role.SENSOR, name="edge-1")
        # A new indicator loaded through replica A is active on replica B at its next batch.
        up = httpx.post(
            ca.url + "/api/v1/indicators",
            files={"file": ("i.csv", b"type,value\nhostname,c2.example\n", "text/csv")},
            headers={"Authorization": f"Bearer {analyst}"},
            timeout=60,  # the first upload of the run may compile the warninglists (seconds)
        )
        assert up.status_code == 201, up.text
        doc = observation(dns__question__name="c2.example", observer="edge-1")
        body = gzip.compress(orjson.dumps({"batch_id": "edge-1-batch-0001", "observations": [doc]}))
        headers = {
            "Authorization": f"Bearer {sensor}",
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
        }
        first = httpx.post(cb.url + "/api/v1/observations", content=body, headers=headers).json()
        assert first["alerts"] == 1 and first["duplicate"] is False
        # The same batch again, through the other replica (a retry after a lost answer).
        again = httpx.post(ca.url + "/api/v1/observations", content=body, headers=headers).json()
        assert again["duplicate"] is True
        # A sensor shipping to both: replica A dies, the batch goes to B.
        shipper = Shipper(f"{ca.url},{cb.url}", sensor, Spool(tmp_path / "spool"), "edge-1", 5)
        for i in range(5):
            shipper.add(
                Observation.from_ecs(observation(ts=1_700_000_100.0 + i, observer="edge-1"))
            )
        shipper.flush()
        assert shipper.drain(force=True) == 1 and shipper.server == ca.url
        ca.__exit__()  # replica A is gone
        for i in range(5):
            shipper.add(
                Observation.from_ecs(observation(ts=1_700_000_200.0 + i, observer="edge-1"))
            )
        shipper.flush()
        assert shipper.drain(force=True) == 0  # A does not answer; the next try goes to B
        assert shipper.drain(force=True) == 1 and shipper.server == cb.url
        assert _stored(b) == (11, 3)
        with b.db.transaction(write=False) as s:
            alerts = s.execute(sa.text("SELECT count(*), sum(count) FROM alerts")).one()
        assert tuple(alerts) == (1, 1)  # one alert, one hit: nothing doubled
    finally:
        for c in (ca, cb):
            c.__exit__()
        a.close()
        b.close()


def test_a_batch_raced_on_two_replicas_is_stored_once(tmp_path: Path, pg_db: str) -> None:
    """A writes the batch and stops inside its transaction; B, having matched the
    same batch meanwhile, waits on the batch id, then learns it is a duplicate."""
    import threading

    from correlator.ingest import IngestService

    a, b = (
        build(load_settings(data_dir=tmp_path / n, database_url=_url(5432, pg_db)))
        for n in ("a", "b")
    )
    try:
        with a.db.transaction() as s:
            IndicatorStore.save(s, [Indicator("hostname", "c2.example", "feed", confidence=70)])
        inside, release = threading.Event(), threading.Event()

        def stall(_session: Any, _ids: list[str]) -> None:
            inside.set()
            assert release.wait(20)

        ingest_a = IngestService(a.db, a.live, 3600, after_alerts=stall)
        docs = [observation(dns__question__name="c2.example", observer="edge-1")]
        results: dict[str, Any] = {}
        t = threading.Thread(target=lambda: results.update(a=ingest_a.ingest("race-0001", docs)))
        t.start()
        assert inside.wait(20)  # A holds the batch id, uncommitted
        threading.Timer(1.0, release.set).start()  # B blocks on it until A commits
        results["b"] = b.ingest.ingest("race-0001", docs)
        t.join(20)
        assert results["a"].duplicate is False and results["b"].duplicate is True
        assert _stored(b) == (1, 1)
        with b.db.transaction(write=False) as s:
            alerts = s.execute(sa.text("SELECT count(*), sum(count) FROM alerts")).one()
        assert tuple(alerts) == (1, 1)
    finally:
        a.close()
        b.close()
