"""Retro-hunt: a new indicator finds what was seen before it was known."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from core.tokens import Role
from tests.conftest import bearer, make_token
from tests.factories import observation
from vigia.wiring import Services

DAY = 86_400.0


def _upload(client: TestClient, token: str, name: str, body: bytes) -> Any:
    return client.post("/api/v1/indicators", headers=bearer(token), files={"file": (name, body)})


def test_new_indicators_hunt_stored_observations_once(
    client: TestClient, services: Services
) -> None:
    sensor = make_token(services, Role.SENSOR, name="sensor-1")
    analyst = make_token(services, Role.ANALYST)
    # Two days back, at the start of an hour: the sightings below (+60 s, +120 s)
    # stay in one dedup window whatever the time the test runs.
    now = (time.time() // 3600) * 3600 + 10
    docs = [
        observation(ts=now - 2 * DAY, dns__question__name="c2.bad.example"),
        observation(ts=now - 2 * DAY + 60, dns__question__name="c2.bad.example"),
        observation(ts=now - 3 * DAY, dst="203.0.113.66"),
        observation(ts=now - 90 * DAY, dns__question__name="old.bad.example"),  # too old
        observation(ts=now - 1 * DAY, dns__question__name="benign.example"),
    ]
    r = client.post(
        "/api/v1/observations",
        headers=bearer(sensor),
        json={"batch_id": "batch-past", "observations": docs},
    )
    assert r.status_code == 200 and r.json()["alerts"] == 0  # nothing was known then

    iocs = b"type,value\ndomain,bad.example\nip-dst,203.0.113.64/28\n"
    first = _upload(client, analyst, "iocs.csv", iocs)
    assert first.status_code == 201, first.text
    assert first.json()["new"] == 2
    assert first.json()["retro_hunt"] == {"observations": 4, "alerts": 2}  # 90 days: too old
    alerts = client.get("/api/v1/alerts", headers=bearer(analyst)).json()["alerts"]
    got = sorted(
        (a["threat"]["enrichments"][0]["matched"]["atomic"], a["event"]["count"], tuple(a["tags"]))
        for a in alerts
    )
    assert got == [("203.0.113.66", 1, ("retro-hunt",)), ("c2.bad.example", 2, ("retro-hunt",))]

    again = _upload(client, analyst, "iocs.csv", iocs)  # nothing new: nothing hunted again
    assert again.json()["new"] == 0 and again.json()["retro_hunt"]["alerts"] == 0
    counts = sorted(
        a["event"]["count"]
        for a in client.get("/api/v1/alerts", headers=bearer(analyst)).json()["alerts"]
    )
    assert counts == [1, 2]

    # The same match arriving live later in the same window folds into the same alert.
    live = observation(ts=now - 2 * DAY + 120, dns__question__name="c2.bad.example")
    client.post(
        "/api/v1/observations",
        headers=bearer(sensor),
        json={"batch_id": "batch-live", "observations": [live]},
    )
    dns = [
        a
        for a in client.get("/api/v1/alerts", headers=bearer(analyst)).json()["alerts"]
        if a["threat"]["enrichments"][0]["matched"]["field"] == "dns.question.name"
    ]
    assert len(dns) == 1 and dns[0]["event"]["count"] == 3


def test_cli_import_reports_the_hunt(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "VIGIA_DATA_DIR": str(tmp_path / "d")}
    env.pop("VIGIA_DATABASE_URL", None)
    iocs = tmp_path / "i.csv"
    iocs.write_text("type,value\nhostname,x.example\n")
    r = subprocess.run(
        [sys.executable, "-m", "vigia", "indicators", "import", str(iocs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,  # a fresh data folder compiles the warninglists once (more under load)
    )
    assert r.returncode == 0, r.stderr
    assert "1 indicators, 1 new; retro-hunt: 0 alerts from 0 stored observations" in r.stderr


def test_indicators_expire_by_type_and_are_purged(services: Services) -> None:
    from datetime import timedelta

    from core.clock import utcnow
    from correlator.intake import take_in
    from correlator.store import IndicatorStore
    from rules.indicator import Indicator
    from rules.sources import LoadResult
    from vigia import scheduler

    result = LoadResult(
        "t", "csv", [Indicator("ip-dst", "192.0.2.10", "t"), Indicator("sha256", "ab" * 32, "t")]
    )
    with services.db.transaction() as s:
        take_in(s, result, "test", 0, 3600)
    with services.db.transaction(write=False) as s:
        by_type = {i.type: i.expires for i in IndicatorStore.load_all(s)}
    assert by_type["sha256"] is None  # hashes do not age out
    ip_expiry = by_type["ip-dst"]
    assert ip_expiry is not None
    assert timedelta(days=29) < ip_expiry - utcnow() <= timedelta(days=30)
    with services.db.transaction() as s:  # time passes: the address is past its date
        from correlator.rows import IndicatorRow

        s.query(IndicatorRow).filter(IndicatorRow.type == "ip-dst").update(
            {"expires": utcnow() - timedelta(seconds=1)}
        )
    assert scheduler.purge_expired_job(services) == 1
    with services.db.transaction(write=False) as s:
        assert [i.type for i in IndicatorStore.load_all(s)] == ["sha256"]
