"""Two `vigia serve` processes on one PostgreSQL and one Elasticsearch (noida-db,
or the cluster named by VIGIA_ELASTICSEARCH_URL): a sensor ships to both in turn,
an indicator loaded through one is active on the other, the same batch sent to
both at once is stored once, and no alert is doubled in either store."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson
from elasticsearch import Elasticsearch

from correlator.esstore import ALERTS, OBSERVATIONS
from tests.centre import free_port, wait_answering
from tests.conftest import PG_ADMIN_URL
from tests.factories import observation
from tests.vigia_cli import in_process

SECRET = "replicas-share-this-secret-0123456789abcdef"


def _vigia(env: dict[str, str], *args: str) -> str:
    """A set-up verb, run in this process (tests/vigia_cli.py): the replicas under test
    are the two `vigia serve` processes."""
    data = Path(env["VIGIA_DATA_DIR"])
    keys = ("VIGIA_DATABASE_URL", "VIGIA_ELASTICSEARCH_URL", "VIGIA_SECRET_KEY")
    r = in_process(data, *args, **{k: env[k] for k in keys})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    log = Path(env["VIGIA_DATA_DIR"]).parent / f"serve-{port}.log"  # read when it fails
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "vigia", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


def _batch(batch_id: str, docs: list[dict[str, Any]]) -> bytes:
    return gzip.compress(orjson.dumps({"batch_id": batch_id, "observations": docs}))


def test_two_serve_processes_share_postgresql_and_elasticsearch(
    es_url: str, pg_db: str, tmp_path: Path
) -> None:
    base_env = {
        **os.environ,
        "VIGIA_DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{pg_db}",
        "VIGIA_ELASTICSEARCH_URL": es_url,
        "VIGIA_SECRET_KEY": SECRET,
    }
    envs = [{**base_env, "VIGIA_DATA_DIR": str(tmp_path / n)} for n in ("a", "b")]
    _vigia(envs[0], "es", "init")
    analyst = _vigia(envs[0], "token", "create", "--role", "analyst", "--name", "ana")
    sensor = _vigia(envs[0], "token", "create", "--role", "sensor", "--name", "edge-1")
    ports = [free_port(), free_port()]
    procs = [_serve(env, port) for env, port in zip(envs, ports, strict=True)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    tag = tmp_path.name.replace("_", "-").lower()  # this run's own values in a shared cluster
    bad = f"c2-{tag}.example"
    try:
        for url, proc in zip(urls, procs, strict=True):
            wait_answering(url + "/ready", proc)
        # An indicator loaded through A is active on B at its next batch.
        up = httpx.post(
            urls[0] + "/api/v1/indicators",
            files={"file": ("i.csv", f"type,value\nhostname,{bad}\n".encode(), "text/csv")},
            headers={"Authorization": f"Bearer {analyst}"},
            timeout=60,  # the first upload of the run may wait for the warninglists' build
        )
        assert up.status_code == 201, up.text
        headers = {
            "Authorization": f"Bearer {sensor}",
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
        }

        def docs(n: int) -> list[dict[str, Any]]:
            hit = observation(ts=1_700_000_000.0 + n, observer="edge-1", dns__question__name=bad)
            quiet = observation(ts=1_700_000_000.0 + n, observer="edge-1")
            for d in (hit, quiet):
                d["vigia_test"] = tmp_path.name
            return [hit, quiet]

        # The sensor ships to both in turn: six batches, three through each.
        for n in range(6):
            r = httpx.post(
                urls[n % 2] + "/api/v1/observations",
                content=_batch(f"edge-1-{tag}-{n:04d}", docs(n)),
                headers=headers,
            )
            assert r.status_code == 200, r.text
            assert r.json()["alerts"] == 1 and r.json()["duplicate"] is False
        # The same batch to both replicas at once: stored once, the other told so.
        body = _batch(f"edge-1-{tag}-race", docs(6))
        answers: list[dict[str, Any]] = []

        def send(url: str) -> None:
            r = httpx.post(url + "/api/v1/observations", content=body, headers=headers)
            assert r.status_code == 200, r.text
            answers.append(r.json())

        threads = [threading.Thread(target=send, args=(u,)) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(a["duplicate"] for a in answers) == [False, True]
        # One alert with seven sightings, whichever replica is asked (each searches
        # Elasticsearch, which shows what it holds once refreshed).
        es = Elasticsearch(es_url)
        es.indices.refresh(index=ALERTS)
        for url in urls:
            found = httpx.get(
                url + "/api/v1/alerts",
                headers={"Authorization": f"Bearer {analyst}"},
            ).json()["alerts"]
            mine = [a for a in found if a["threat"]["enrichments"][0]["matched"]["atomic"] == bad]
            assert [a["event"]["count"] for a in mine] == [7]
        es.indices.refresh(index=OBSERVATIONS)
        es.indices.refresh(index=ALERTS)
        seen = es.count(index=OBSERVATIONS, query={"term": {"vigia_test": tmp_path.name}})["count"]
        assert seen == 14  # seven batches of two, the raced one once
        hits = es.search(index=ALERTS, query={"term": {"event.id": mine[0]["event"]["id"]}})
        assert hits["hits"]["total"]["value"] == 1  # one document, however many replicas wrote
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
