"""The national demo as `vigia up` loads it on an empty data dir: a real process on
loopback, read through the API as the console reads it."""

from __future__ import annotations

import csv
import io
import ipaddress
from datetime import date, timedelta
from pathlib import Path

import httpx

from tests.centre import Up
from tests.console import console_login

DOC_V4 = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
DOC_V6 = ipaddress.ip_network("2001:db8::/32")
# The two entities of the first demo keep the trace's networks: the demo alerts
# (wikipedia.pcap, bro-get.pcap) are attributed to them.
TRACE_ENTITIES = {"min-demo", "gam-ejemplo"}
ALL_STATES = {
    "not_started",
    "in_progress",
    "submitted",
    "in_review",
    "certified",
    "conditional",
    "expired",
    "suspended",
    "revoked",
}


def _in_doc_ranges(net: str) -> bool:
    n = ipaddress.ip_network(net)
    if n.version == 6:
        return n.subnet_of(DOC_V6)  # type: ignore[arg-type]
    return any(n.subnet_of(d) for d in DOC_V4)  # type: ignore[arg-type]


def test_up_loads_a_national_demo_once(tmp_path: Path) -> None:
    up = Up(tmp_path / "data").start()
    try:
        token = up.admin
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=up.url, headers=auth, timeout=30) as c:
            p = c.get("/api/v1/certification/progress").json()
            assert p["total"] >= 250
            assert 0.3 < p["ratio"] < 0.5
            assert {k for k, v in p["by_state"].items() if v} == ALL_STATES
            assert len(p["by_level"]) == 10  # every government level has entities
            trend = p["trend"]
            assert len(trend) == 12 and all(m["certified"] for m in trend)
            assert trend[-1]["certified"] > trend[0]["certified"]  # growing
            assert p["forecast"]["month"] and p["forecast"]["pace_per_month"] > 0
            # Issue 16's national view: the nine departments and the national bodies,
            # certificates ending within 60 days, the pace a chosen day needs.
            assert len(p["by_department"]) == 10 and p["by_department"][""]["total"] > 0
            assert all(v["total"] > 0 for v in p["by_department"].values())
            assert p["expiring"] and all(0 <= e["days_left"] <= 60 for e in p["expiring"])
            nxt = date(date.today().year + 1, 12, 31).isoformat()
            plan = c.get("/api/v1/certification/progress", params={"by": nxt}).json()
            assert plan["forecast"]["pace_needed"] > 0 and plan["projection"]
            expiring = [
                c
                for c in c.get("/api/v1/certificates", params={"status": "valid"}).json()
                if date.fromisoformat(c["valid_until"][:10]) < date.today() + timedelta(days=60)
            ]
            assert expiring  # some expire soon

            history = c.get("/api/v1/certification/progress/history").json()["snapshots"]
            days = [date.fromisoformat(s["day"]) for s in history]
            assert days[-1] == date.today() and days[0] <= date.today() - timedelta(days=540)
            assert len(days) == len(set(days)) >= 540  # one a day
            assert history[0]["ratio"] < history[-1]["ratio"]

            statuses = {a["status"] for a in c.get("/api/v1/assessments").json()}
            assert statuses == {"in_progress", "submitted", "in_review", "returned", "decided"}
            queue = c.get("/api/v1/assessments", params={"status": "in_review"}).json()
            one = c.get(f"/api/v1/assessments/{queue[0]['id']}").json()
            assert all(x["answer"] for x in one["controls"])  # every answer to review
            assert any(x["review"] == "accepted" for x in one["controls"])  # half reviewed

            assert console_login(c, token, follow=True).status_code == 200
            assert c.get("/console/certificacion").status_code == 200
            reviews = c.get("/console/revisiones")
            assert reviews.status_code == 200 and queue[0]["entity_id"] in reviews.text

            rows = list(csv.DictReader(io.StringIO(c.get("/api/v1/entities.csv").text)))
            assert len(rows) == p["total"]
            assert {"min-demo", "gam-ejemplo"} <= {r["id"] for r in rows}
            for r in rows:
                assert all(d.endswith(".example") for d in r["domains"].split()), r
                if r["id"] not in TRACE_ENTITIES:
                    assert r["networks"] and all(map(_in_doc_ranges, r["networks"].split())), r
            municipal = [r for r in rows if r["level"] == "municipal" and r["parent"]]
            assert len({r["parent"] for r in municipal}) == 9  # each department has some
    finally:
        _, err = up.stop()
    assert "datos de demostración: 298 entidades" in err

    up.start()  # second start, same data and port: nothing loaded again
    try:
        with httpx.Client(base_url=up.url, headers=auth, timeout=30) as c:
            assert c.get("/api/v1/certification/progress").json()["total"] == p["total"]
    finally:
        _, err = up.stop()
    assert "datos de demostración" not in err


def test_no_demo_keeps_the_database_empty(tmp_path: Path) -> None:
    up = Up(tmp_path / "data", "--no-demo").start()
    try:
        auth = {"Authorization": f"Bearer {up.admin}"}
        with httpx.Client(base_url=up.url, headers=auth, timeout=30) as c:
            p = c.get("/api/v1/certification/progress").json()
            assert p["total"] == 0 and p["certified"] == 0
            assert c.get("/api/v1/certification/progress/history").json()["snapshots"] == []
    finally:
        _, err = up.stop()
    assert "datos de demostración" not in err
