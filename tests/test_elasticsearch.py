"""The Elasticsearch mirror against `noida-db` (PyPI, pinned), started from a
fixture on loopback — or a real cluster when VIGIA_ELASTICSEARCH_URL is set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from correlator.esstore import ALERTS, OBSERVATIONS
from correlator.store import IndicatorStore
from rules.indicator import Indicator
from tests.centre import free_port
from tests.conftest import bearer, make_token
from tests.factories import observation
from vigia.core.settings import load_settings
from vigia.core.tokens import Role
from vigia.wiring import build, es_store


def test_es_init_is_idempotent(es_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "VIGIA_DATA_DIR": str(tmp_path), "VIGIA_ELASTICSEARCH_URL": es_url}
    env.pop("VIGIA_DATABASE_URL", None)
    for _ in range(2):
        r = subprocess.run(
            [sys.executable, "-m", "vigia", "es", "init"], capture_output=True, text=True, env=env
        )
        assert r.returncode == 0, r.stderr
        assert "template vigia-alerts" in r.stderr
    bad = {**env, "VIGIA_ELASTICSEARCH_URL": f"http://127.0.0.1:{free_port()}"}
    r = subprocess.run(
        [sys.executable, "-m", "vigia", "es", "init"], capture_output=True, text=True, env=bad
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_ingest_is_mirrored_without_duplicates(es_url: str, tmp_path: Path) -> None:
    services = build(load_settings(data_dir=tmp_path / "d", elasticsearch_url=es_url))
    try:
        es = es_store(services.settings)
        assert es is not None and services.ingest.mirror is not None
        es.init()
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
