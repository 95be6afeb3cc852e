"""The Elasticsearch mirror against `noida-db` (PyPI, pinned), started from a
fixture on loopback — or a real cluster when VIGIA_ELASTICSEARCH_URL is set."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from core.clock import iso, parse_iso
from core.settings import load_settings
from core.tokens import Role
from correlator.essearch import EsAlertSearch
from correlator.esstore import ALERTS, OBSERVATIONS
from correlator.rows import AlertRow, ObservationRow
from correlator.store import AlertFilter, AlertStore, IndicatorStore
from rules.indicator import Indicator
from tests.centre import free_port
from tests.conftest import bearer, make_token
from tests.factories import observation
from tests.tcpproxy import TcpProxy
from vigia.wiring import Services, build, es_store


def _centre(tmp_path: Path, db_url: str, es_url: str, **settings: Any) -> Services:
    """A centre on this backend with the cluster bootstrapped, as `vigia es init` does."""
    from correlator import esindicators

    services = build(
        load_settings(
            data_dir=tmp_path / "d", database_url=db_url, elasticsearch_url=es_url, **settings
        )
    )
    assert services.es is not None
    services.es.init()
    esindicators.init(services.es)
    return services


def test_es_init_is_idempotent(es_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "VIGIA_DATA_DIR": str(tmp_path), "VIGIA_ELASTICSEARCH_URL": es_url}
    env.pop("VIGIA_DATABASE_URL", None)
    for _ in range(2):
        r = subprocess.run(
            [sys.executable, "-m", "vigia", "es", "init"], capture_output=True, text=True, env=env
        )
        assert r.returncode == 0, r.stderr
        assert "template vigia-alerts" in r.stderr and "index vigia-indicators" in r.stderr
    bad = {**env, "VIGIA_ELASTICSEARCH_URL": f"http://127.0.0.1:{free_port()}"}
    r = subprocess.run(
        [sys.executable, "-m", "vigia", "es", "init"], capture_output=True, text=True, env=bad
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_ingest_is_mirrored_without_duplicates(es_url: str, tmp_path: Path, db_url: str) -> None:
    services = _centre(tmp_path, db_url, es_url)
    try:
        es = es_store(services.settings)  # a client of its own, as `vigia es init` makes
        assert es is not None and services.ingest.mirror is not None
        with services.db.transaction() as s:
            IndicatorStore.save(s, [Indicator("hostname", "es-bad.example", "feed")])
        client = TestClient(create_app(services))
        sensor = bearer(make_token(services, Role.SENSOR, name="sensor-1"))
        tag = tmp_path.name  # this test's own values, whatever the cluster already holds
        docs = [observation(dns__question__name="es-bad.example", observer="sensor-1")]
        docs[0]["vigia_test"] = tag
        for batch in ("batch-es-0001", "batch-es-0001", "batch-es-0002"):  # a retry, then more
            r = client.post(
                "/api/v1/observations",
                json={"batch_id": f"{batch}-{tag}", "observations": docs},
                headers=sensor,
            )
            assert r.status_code == 200, r.text
        es.client.indices.refresh(index=ALERTS)  # the triage search is near real time
        ids = [
            a["event"]["id"]
            for a in client.get(
                "/api/v1/alerts", headers=bearer(make_token(services, Role.ANALYST))
            ).json()["alerts"]
        ]
        assert len(ids) == 1
        es.client.indices.refresh(index=ALERTS)
        hits = es.client.search(index=ALERTS, query={"term": {"event.id": ids[0]}})["hits"]
        assert hits["total"]["value"] == 1  # one document per alert, however often sent
        assert hits["hits"][0]["_source"]["event"]["count"] == 2  # the latest fold
        es.client.indices.refresh(index=OBSERVATIONS)
        seen = es.client.count(index=OBSERVATIONS, query={"term": {"vigia_test": tag}})["count"]
        assert seen == 2  # two accepted batches, the retried one not again
        assert services.telemetry.counters.get("mirror_failures", 0) == 0
    finally:
        services.close()


def _md5(tag: str) -> str:
    return hashlib.md5(tag.encode(), usedforsecurity=False).hexdigest()


def _net(tag: str) -> str:
    """Three octets of this run's own network (the cluster is shared between runs)."""
    h = _md5(tag)
    return f"198.{int(h[:2], 16)}.{int(h[2:4], 16)}"


def _seen_then_listed(
    services: Services, tag: str, csv: str, es_url: str | None, cut: Any = None
) -> tuple[dict[str, int], int]:
    """Observations ingested first, then (after `cut`, if given) indicators listed:
    what the hunt raised, as {matched value: count}, and how many observations it
    examined."""
    from rules.sources import load_indicator_file

    client = TestClient(create_app(services))
    sensor = bearer(make_token(services, Role.SENSOR, name="sensor-1"))
    ts = time.time() - 86400  # yesterday: inside the hunt's 30 days
    docs = [
        observation(ts=ts, dns__question__name=f"WWW.C2-{tag}.example"),  # case, subdomain
        observation(ts=ts + 1, dns__question__name=f"c2-{tag}.example"),
        observation(ts=ts + 2, dns__question__name=f"notc2-{tag}.example"),  # not a subdomain
        observation(ts=ts + 3, src="10.1.1.5", dst=f"{_net(tag)}.9"),  # inside .0/25
        observation(ts=ts + 4, src="10.1.1.5", dst=f"{_net(tag)}.200"),  # outside it
        observation(ts=ts + 5, url__original=f"http://get-{tag}.example/a.exe"),
        observation(ts=ts + 6, file__hash__md5=_md5(tag).upper()),
        observation(ts=ts - 40 * 86400, dns__question__name=f"c2-{tag}.example"),  # too old
    ]
    for d in docs:
        d["vigia_test"] = tag
    r = client.post(
        "/api/v1/observations",
        json={"batch_id": f"batch-hunt-{tag}", "observations": docs},
        headers=sensor,
    )
    assert r.status_code == 200 and r.json()["alerts"] == 0, r.text
    if cut is not None:
        cut()
    path = services.settings.data_dir / "iocs.csv"
    path.write_text(csv)
    with services.db.transaction() as s:
        intake = services.take_in(s, load_indicator_file(path), "test")
    if es_url:  # retro-hunt alerts reach the triage search by the sync job
        from vigia import scheduler

        scheduler.es_alerts_job(services)
        Elasticsearch(es_url).indices.refresh(index=ALERTS)
    alerts = client.get(
        "/api/v1/alerts", headers=bearer(make_token(services, Role.ANALYST))
    ).json()["alerts"]
    assert intake.hunt.alerts == len(alerts)
    found = {
        a["threat"]["enrichments"][0]["matched"]["atomic"]: a["event"]["count"] for a in alerts
    }
    return found, intake.hunt.observations


def test_retro_hunt_runs_as_terms_queries_in_elasticsearch(
    es_url: str, tmp_path: Path, db_url: str
) -> None:
    tag = tmp_path.name[-12:].lower().replace("_", "x")
    md5 = _md5(tag)
    csv = (
        "type,value\n"
        f"domain,c2-{tag}.example\n"
        f"ip-dst,{_net(tag)}.0/25\n"
        f"url,http://get-{tag}.example/a.exe\n"
        f"md5,{md5}\n"
    )
    expected = {
        f"www.c2-{tag}.example": 1,
        f"c2-{tag}.example": 1,
        f"{_net(tag)}.9": 1,
        f"http://get-{tag}.example/a.exe": 1,
        md5.upper(): 1,
    }
    services = _centre(tmp_path, db_url, es_url)
    try:
        assert services.es is not None
        found, examined = _seen_then_listed(services, tag, csv, es_url)
        # The queries narrowed it: the five hits and the .200 address (its text shares the
        # network's prefix; the Matcher refuses it), not the unrelated or too old ones.
        assert examined == 6
        assert {k.lower(): v for k, v in found.items()} == {
            k.lower(): v for k, v in expected.items()
        }
        assert services.telemetry.counters.get("es_hunt_failures", 0) == 0
    finally:
        services.close()
    # The same, with Elasticsearch gone after ingest: hunt and search fall back to
    # the SQL store, each failure counted.
    proxy = TcpProxy(int(es_url.rsplit(":", 1)[1])).start()
    away = build(  # a store of its own (SQLite): the first part's holds this batch already
        load_settings(
            data_dir=tmp_path / "away",
            database_url="",
            elasticsearch_url=f"http://127.0.0.1:{proxy.port}",
        )
    )
    try:
        found, examined = _seen_then_listed(away, tag, csv, None, cut=proxy.stop)
        assert examined == 7  # every observation of the last 30 days
        assert {k.lower(): v for k, v in found.items()} == {
            k.lower(): v for k, v in expected.items()
        }
        counters = away.telemetry.counters
        assert counters["es_hunt_failures"] == 1 and counters["es_search_failures"] == 1
    finally:
        away.close()
        proxy.stop()


def test_triage_reaches_the_alerts_in_elasticsearch(
    es_url: str, tmp_path: Path, db_url: str
) -> None:
    from vigia import scheduler

    services = _centre(tmp_path, db_url, es_url)
    try:
        assert services.es is not None
        bad = f"triage-{_md5(tmp_path.name)[:10]}.example"
        with services.db.transaction() as s:
            IndicatorStore.save(s, [Indicator("hostname", bad, "feed")])
        client = TestClient(create_app(services))
        sensor = bearer(make_token(services, Role.SENSOR, name="sensor-1"))
        r = client.post(
            "/api/v1/observations",
            json={
                "batch_id": f"batch-triage-{_md5(bad)[:8]}",
                "observations": [observation(dns__question__name=bad, observer="sensor-1")],
            },
            headers=sensor,
        )
        assert r.status_code == 200 and r.json()["alerts"] == 1
        es = services.es.client
        es.indices.refresh(index=ALERTS)  # the triage search is near real time
        analyst = bearer(make_token(services, Role.ANALYST))
        aid = client.get("/api/v1/alerts", headers=analyst).json()["alerts"][0]["event"]["id"]

        def held() -> dict[str, Any]:
            es.indices.refresh(index=ALERTS)
            hits = es.search(index=ALERTS, query={"term": {"event.id": aid}})["hits"]["hits"]
            assert len(hits) == 1
            return dict(hits[0]["_source"]["vigia"])

        first = held()  # as mirrored at ingest: grouped into an incident
        assert first["status"] == "in_incident" and first["incident"]
        r = client.patch(
            f"/api/v1/alerts/{aid}",
            json={"status": "dismissed", "reason": "false_positive"},
            headers=analyst,
        )
        assert r.status_code == 200, r.text
        assert held() == first  # triage is not mirrored by itself
        assert (
            scheduler.run_job(
                services, "alerts-es", scheduler.es_alerts_job, timedelta(seconds=10), True
            )
            == "ok"
        )
        now = held()
        assert now["status"] == "dismissed" and now["incident"] is None
        with services.db.transaction(write=False) as s:
            row = s.get(AlertRow, aid)
            assert row is not None and now["updated"] == iso(row.updated_at)
            assert services.es.synced_until() == parse_iso(iso(row.updated_at))
        # The retention: an alert untouched for longer goes from the index (only).
        stale = {**now, "updated": "2020-01-01T00:00:00.000Z"}
        es.index(
            index=ALERTS, id=f"{aid}-old", document={"event": {"id": f"{aid}-old"}, "vigia": stale}
        )
        es.indices.refresh(index=ALERTS)
        scheduler.es_alerts_job(services)
        es.indices.refresh(index=ALERTS)
        assert held()["status"] == "dismissed"
        assert not es.exists(index=ALERTS, id=f"{aid}-old")
    finally:
        services.close()


def _pages(search: Any, f: AlertFilter) -> list[str]:
    out: list[str] = []
    cursor = None
    while True:
        rows, cursor = search(f, 3, cursor)
        out += [r.id for r in rows]
        if cursor is None:
            return out


def test_triage_search_in_elasticsearch_pages_as_sql_does(
    es_url: str, tmp_path: Path, db_url: str
) -> None:
    from tests.incident_helpers import world
    from vigia import scheduler

    services = _centre(tmp_path, db_url, es_url, dedup_window_s=3600)
    try:
        assert services.es is not None
        h = world(services)
        client = TestClient(create_app(services))
        t0 = 1_550_000_000.0 + int(_md5(tmp_path.name)[:6], 16)  # this run's own hours
        sources = ["10.1.1.5", "10.2.0.7", "10.9.9.9"]
        names = ["evil.example", "other.example", "weak.example", "third.example"]
        for i in range(14):
            doc = observation(
                src=sources[i % 3], ts=t0 + i * 7200, dns__question__name=names[i % 4]
            )
            if i % 5 == 0:
                doc = observation(src=sources[i % 3], dst="203.0.113.66", ts=t0 + i * 7200)
            r = client.post(
                "/api/v1/observations",
                json={"batch_id": f"batch-search-{i:04d}-{int(t0)}", "observations": [doc]},
                headers=h["sensor"],
            )
            assert r.status_code == 200 and r.json()["alerts"] == 1, r.text
        since = datetime.fromtimestamp(t0, UTC)
        until = datetime.fromtimestamp(t0 + 14 * 7200, UTC)
        with services.db.transaction(write=False) as s:
            rows, _ = AlertStore.search(s, AlertFilter(since, until, status="new"), 1, None)
        r = client.patch(
            f"/api/v1/alerts/{rows[0].id}",
            json={"status": "dismissed", "reason": "false_positive"},
            headers=h["analyst"],
        )
        assert r.status_code == 200, r.text
        assert (
            scheduler.run_job(
                services, "alerts-es", scheduler.es_alerts_job, timedelta(seconds=10), True
            )
            == "ok"
        )
        services.es.client.indices.refresh(index=ALERTS)
        filters = [
            AlertFilter(since, until),
            AlertFilter(since, until, status="in_incident"),
            AlertFilter(since, until, status="new"),
            AlertFilter(since, until, status="dismissed"),
            AlertFilter(since, until, indicator_type="ip-dst"),
            AlertFilter(since, until, entity_id="ent-a"),
            AlertFilter(since, until, entity_id="ent-b", hide_tlp=("red", "amber")),
            AlertFilter(since + timedelta(hours=5), until - timedelta(hours=5)),
        ]
        sizes: list[int] = []
        with services.db.transaction(write=False) as s:
            for f in filters:
                in_sql = _pages(lambda f, n, c: AlertStore.search(s, f, n, c), f)
                in_es = _pages(
                    lambda f, n, c: EsAlertSearch(services.es.client).search(s, f, n, c), f
                )
                assert in_es == in_sql, f
                sizes.append(len(in_sql))
        assert sizes[0] == 14 and sizes[3] == 1 and all(sizes[i] for i in (1, 4, 5, 6, 7))
        assert services.telemetry.counters.get("es_search_failures", 0) == 0
        # Triage ahead of the sync: the state in SQL decides, never a stale index.
        with services.db.transaction(write=False) as s:
            grouped, _ = AlertStore.search(s, filters[1], 1, None)
        r = client.patch(
            f"/api/v1/alerts/{grouped[0].id}",
            json={"status": "dismissed", "reason": "false_positive"},
            headers=h["analyst"],
        )
        assert r.status_code == 200, r.text
        with services.db.transaction(write=False) as s:
            es = EsAlertSearch(services.es.client)
            in_es = _pages(lambda f, n, c: es.search(s, f, n, c), filters[1])
            assert grouped[0].id not in in_es and len(in_es) == sizes[1] - 1
            late = _pages(lambda f, n, c: es.search(s, f, n, c), filters[3])
            assert grouped[0].id not in late and len(late) == 1  # until the next sync
        # The route searches Elasticsearch; an entity still sees only its own alerts.
        got = client.get(
            "/api/v1/alerts", params={"since": since.isoformat(), "limit": 500}, headers=h["b"]
        ).json()["alerts"]
        assert got and {a["organization"]["id"] for a in got} == {"ent-b"}
    finally:
        services.close()


def test_elasticsearch_goes_away_and_comes_back(es_url: str, tmp_path: Path, db_url: str) -> None:
    """Ingest refuses with 503 while the cluster is away (nothing written anywhere),
    the sensor keeps its batches, and once it is back each observation is stored
    once in SQL and once in Elasticsearch — a batch half-taken before the cut
    included."""
    from sensors.observation import Observation
    from sensors.ship import Shipper
    from sensors.spool import Spool
    from tests.centre import Centre

    proxy = TcpProxy(int(es_url.rsplit(":", 1)[1])).start()
    services = build(
        load_settings(
            data_dir=tmp_path / "d",
            database_url=db_url,
            elasticsearch_url=f"http://127.0.0.1:{proxy.port}",
        )
    )
    assert services.es is not None
    services.es.init()
    edge = f"edge-{_md5(tmp_path.name)[:8]}"  # this run's own observer in a shared cluster
    token = make_token(services, Role.SENSOR, name=edge)
    centre = Centre(services, free_port()).__enter__()
    shipper = Shipper(centre.url, token, Spool(tmp_path / "spool"), edge, batch_size=10)
    es = Elasticsearch(es_url)

    def ship(n: int, first: int) -> None:
        for i in range(n):
            shipper.add(
                Observation.from_ecs(observation(ts=time.time() + first + i, observer=edge))
            )
        shipper.flush()

    def in_es() -> int:
        es.indices.refresh(index=OBSERVATIONS)
        return int(es.count(index=OBSERVATIONS, query={"term": {"observer.name": edge}})["count"])

    def in_sql() -> int:
        with services.db.transaction(write=False) as s:
            return len(s.execute(select(ObservationRow.id)).all())

    try:
        ship(10, 0)
        assert shipper.drain(force=True) == 1 and (in_sql(), in_es()) == (10, 10)
        proxy.stop()  # Elasticsearch is gone
        ship(20, 100)
        assert shipper.drain(force=True) == 0  # refused, kept in the spool
        direct = httpx.post(
            centre.url + "/api/v1/observations",
            json={"batch_id": f"{edge}-direct", "observations": [observation(observer=edge)]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert direct.status_code == 503 and direct.headers["retry-after"] == "5"
        assert in_sql() == 10  # nothing of the refused batches written
        # A batch Elasticsearch took but SQL did not (a replica died between): sent
        # again, Elasticsearch holds its observations already and keeps them once.
        half = [observation(ts=time.time() + 500 + i, observer=edge) for i in range(5)]
        proxy.start()
        services.es.store_observations(f"{edge}-half", half)
        r = httpx.post(
            centre.url + "/api/v1/observations",
            json={"batch_id": f"{edge}-half", "observations": half},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200 and r.json()["duplicate"] is False
        assert shipper.drain(force=True) == 2
        assert (in_sql(), in_es()) == (35, 35)  # nothing lost, nothing doubled
        assert services.telemetry.counters["ingest_batches_unavailable"] >= 2
    finally:
        centre.__exit__()
        proxy.stop()
        services.close()


def test_indicators_reach_elasticsearch_as_ecs_threat_indicators(
    es_url: str, tmp_path: Path, db_url: str
) -> None:
    from correlator import esindicators
    from vigia import scheduler

    services = _centre(tmp_path, db_url, es_url)
    try:
        assert services.es is not None
        tag = _md5(tmp_path.name)[:10]
        listed = [
            Indicator("ip-dst", f"198.51.100.{int(tag[:2], 16) % 250 + 1}", tag, confidence=90),
            Indicator("ip-dst", "2001:db8::/32", tag, tlp="amber"),
            Indicator("domain", f"c2-{tag}.example", tag, confidence=20),
            Indicator("url", f"get-{tag}.example/a.exe", tag),
            Indicator("md5", _md5(tag), tag, tlp="red"),
            Indicator("email-src", f"phish-{tag}@mail.example", tag),
            Indicator("ja3-fingerprint-md5", _md5(tag + "ja3"), tag),
        ]
        with services.db.transaction() as s:
            IndicatorStore.save(s, listed)

        def held() -> dict[str, dict[str, Any]]:
            es = services.es.client  # type: ignore[union-attr]
            es.indices.refresh(index=esindicators.INDICATORS)
            hits = es.search(
                index=esindicators.INDICATORS,
                query={"term": {"threat.indicator.provider": tag}},
                size=50,
            )["hits"]["hits"]
            return {h["_source"]["vigia"]["value"]: h["_source"] for h in hits}

        def run() -> None:
            assert (
                scheduler.run_job(
                    services, "es-ind", scheduler.es_indicators_job, timedelta(minutes=1), True
                )
                == "ok"
            )

        run()
        docs = held()
        assert len(docs) == 7
        ip = docs[listed[0].value]["threat"]["indicator"]
        assert (ip["type"], ip["ip"], ip["confidence"]) == ("ipv4-addr", listed[0].value, "High")
        net = docs["2001:db8::/32"]["threat"]["indicator"]
        assert net["type"] == "ipv6-addr" and "ip" not in net and net["marking"]["tlp"] == "AMBER"
        dom = docs[f"c2-{tag}.example"]["threat"]["indicator"]
        assert (dom["type"], dom["url"]["domain"], dom["confidence"]) == (
            "domain-name",
            f"c2-{tag}.example",
            "Low",
        )
        url = docs[f"get-{tag}.example/a.exe"]["threat"]["indicator"]
        assert url["url"]["full"] == f"http://get-{tag}.example/a.exe"
        md5 = docs[_md5(tag)]["threat"]["indicator"]
        assert md5["file"]["hash"]["md5"] == _md5(tag) and md5["marking"]["tlp"] == "RED"
        assert docs[f"phish-{tag}@mail.example"]["threat"]["indicator"]["email"]["address"]
        assert docs[_md5(tag + "ja3")]["threat"]["indicator"]["type"] == "software"
        assert all(d["event"]["kind"] == "enrichment" for d in docs.values())
        # A refresh replaces its document; an indicator past its expiry goes.
        with services.db.transaction() as s:
            IndicatorStore.save(
                s,
                [
                    Indicator("domain", f"c2-{tag}.example", tag, confidence=80),
                    Indicator(
                        "md5", _md5(tag), tag, expires=datetime.now(UTC) - timedelta(seconds=1)
                    ),
                ],
            )
        run()
        docs = held()
        assert len(docs) == 6 and _md5(tag) not in docs
        assert docs[f"c2-{tag}.example"]["threat"]["indicator"]["confidence"] == "High"
    finally:
        services.close()


def test_a_scanned_files_alerts_are_grouped_and_mirrored(
    es_url: str, tmp_path: Path, db_url: str
) -> None:
    """POST /api/v1/files stores its alerts through the ingest's one upsert path
    (correlator.files -> IngestService.store_alerts): grouped into an incident and
    mirrored to Elasticsearch like a batch's."""
    services = _centre(tmp_path, db_url, es_url)
    try:
        es = es_store(services.settings)
        assert es is not None
        client = TestClient(create_app(services))
        sensor = bearer(make_token(services, Role.SENSOR, name="sensor-1"))
        eicar = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
        tag = tmp_path.name
        r = client.post(
            "/api/v1/files",
            data={"src_ip": "203.0.113.80", "dst_ip": "10.1.2.3", "community_id": f"1:{tag}"},
            files={"file": ("eicar.com", eicar, "application/octet-stream")},
            headers=sensor,
        )
        assert r.status_code == 200, r.text
        (alert_id,) = r.json()["alerts"]
        analyst = bearer(make_token(services, Role.ANALYST))
        alert = client.get(f"/api/v1/alerts/{alert_id}", headers=analyst).json()
        assert alert["vigia"]["status"] == "in_incident"  # grouped by after_alerts
        es.client.indices.refresh(index=ALERTS)
        hits = es.client.search(index=ALERTS, query={"term": {"event.id": alert_id}})["hits"]
        assert hits["total"]["value"] == 1
        assert hits["hits"][0]["_source"]["rule"]["name"] == "eicar_test_file"
        assert services.telemetry.counters.get("mirror_failures", 0) == 0
    finally:
        services.close()


def test_documents_stored_before_the_match_keys_are_still_hunted(
    es_url: str, tmp_path: Path
) -> None:
    """Subdomains and IPv4 networks are found by the documents' match keys
    (correlator.eskeys); documents a centre stored before it kept those keys are
    asked for the old way, so none is missed: here one of each kind, the keyed one
    and the old one each found, their unrelated neighbours not."""
    from correlator import eshunt
    from correlator.esstore import EsTelemetry

    tag = tmp_path.name[-12:].lower().replace("_", "x")
    es = EsTelemetry(Elasticsearch(es_url), 30)
    es.init()
    ts = time.time() - 3600
    keyed = [
        observation(ts=ts, dns__question__name=f"a.c2-{tag}.example"),
        observation(ts=ts, src="10.1.1.5", dst=f"{_net(tag)}.7"),
        observation(ts=ts, dns__question__name=f"quiet-{tag}.example"),
    ]
    es.store_observations(f"keyed-{tag}", keyed)
    old = [
        observation(ts=ts, dns__question__name=f"b.c2-{tag}.example"),
        observation(ts=ts, src="10.1.1.6", dst=f"{_net(tag)}.8"),
        observation(ts=ts, dns__question__name=f"calm-{tag}.example"),
    ]
    es.client.bulk(  # as a centre without the keys stored them
        operations=[
            x
            for n, d in enumerate(old)
            for x in ({"create": {"_index": OBSERVATIONS, "_id": f"old-{tag}:{n}"}}, d)
        ],
        refresh=True,
    )
    indicators = [
        Indicator("domain", f"c2-{tag}.example", "t"),
        Indicator("ip-dst", f"{_net(tag)}.0/24", "t"),
    ]
    since = datetime.now(UTC) - timedelta(days=1)
    found = [d for page in eshunt.candidates(es.client, indicators, since) for d in page]
    names = sorted(d["dns"]["question"]["name"] for d in found if "dns" in d)
    addrs = sorted(d["destination"]["ip"] for d in found if "dns" not in d)
    assert names == [f"a.c2-{tag}.example", f"b.c2-{tag}.example"]
    assert addrs == [f"{_net(tag)}.7", f"{_net(tag)}.8"]
    keys = {
        d["dns"]["question"]["name"]: d.get("vigia", {}).get("match_keys")
        for d in found
        if "dns" in d
    }
    assert f"d:c2-{tag}.example" in keys[f"a.c2-{tag}.example"]  # kept with the document
    assert keys[f"b.c2-{tag}.example"] is None
