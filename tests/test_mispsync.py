"""MISP sync through pymisp against a MISP REST API on loopback, built from real events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.tokens import Role
from rules.indicator import supported_type
from tests.centre import free_port
from tests.conftest import corpus
from tests.mispserver import KEY, MispOnLoopback

SECRET = "misp-replicas-share-this-secret-0123456789"


def _event(*parts: str, published: bool, timestamp: int) -> dict[str, Any]:
    doc = json.loads(corpus("misp", "pymisp-tests", *parts).read_text())
    event = doc.get("Event", doc)
    event["published"], event["timestamp"] = published, str(timestamp)
    return {"Event": event}


def _expected(doc: dict[str, Any]) -> set[tuple[str, str]]:
    event = doc["Event"]
    attrs = list(event.get("Attribute", []))
    for obj in event.get("Object", []):
        attrs.extend(obj.get("Attribute", []))
    return {
        (a["type"], a["value"])
        for a in attrs
        if a.get("to_ids") and supported_type(a["type"]) and not a.get("deleted")
    }


def _sync(
    tmp_path: Path, url: str, key_file: Path, db_url: str, data: str = "d"
) -> subprocess.CompletedProcess[str]:
    """`vigia indicators sync` in its own process, with its own data directory."""
    env = {
        **os.environ,
        "VIGIA_DATA_DIR": str(tmp_path / data),
        "VIGIA_WARNINGLISTS": "false",
        "VIGIA_DATABASE_URL": db_url,
        "VIGIA_SECRET_KEY": SECRET,  # replicas share the secret (audit keys)
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "vigia",
            "indicators",
            "sync",
            "--misp-url",
            url,
            "--misp-key-file",
            str(key_file),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_first_and_incremental_sync(tmp_path: Path, db_url: str) -> None:
    osint = _event(
        "57c4445b-c548-4654-af0b-4be3950d210f.json", published=True, timestamp=1_700_000_000
    )
    draft = _event("misp_event.json", published=False, timestamp=1_700_000_100)
    events = [osint, draft]
    key_file = tmp_path / "misp.key"
    key_file.write_text(KEY + "\n")
    with MispOnLoopback(events, free_port()) as misp:
        first = _sync(tmp_path, misp.url, key_file, db_url)
        assert first.returncode == 0, first.stderr
        n = len(_expected(osint))
        assert n > 0
        assert f"({n} new" in first.stderr and "since the beginning" in first.stderr
        assert "went wrong" not in first.stderr
        assert misp.requests[-1]["published"] in (1, True)
        assert misp.requests[-1].get("timestamp") is None

        later = _event(
            "mispevent_testfiles", "existing_event.json", published=True, timestamp=1_700_000_500
        )
        events.append(later)
        second = _sync(tmp_path, misp.url, key_file, db_url)
        assert second.returncode == 0, second.stderr
        assert int(misp.requests[-1]["timestamp"]) == 1_700_000_001  # only what changed since
        m = len(_expected(later))
        assert f"({m} new" in second.stderr and "since 1700000000" in second.stderr

        bad_key = tmp_path / "bad.key"
        bad_key.write_text("b" * 40)
        refused = _sync(tmp_path, misp.url, bad_key, db_url)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().count("\n") == 0 and misp.url in refused.stderr
    assert _sync_point(db_url, misp.url) == 1_700_000_500  # the refused run changed nothing
    assert not (tmp_path / "d" / "misp-sync.json").exists()  # the point is in the database


def _sync_point(db_url: str, url: str) -> int | None:
    from core.db import Database
    from correlator import misp as misp_link

    db = Database(db_url)
    try:
        return misp_link.sync_point(db, url)
    finally:
        db.dispose()


def test_a_second_replica_continues_from_the_first_sync_point(tmp_path: Path, db_url: str) -> None:
    """Two processes with their own data directories on one database: the second's
    sync asks MISP only for what changed since the first's, and a full run by either
    still starts from the beginning."""
    first_event = _event(
        "57c4445b-c548-4654-af0b-4be3950d210f.json", published=True, timestamp=1_700_000_000
    )
    events = [first_event]
    key_file = tmp_path / "misp.key"
    key_file.write_text(KEY + "\n")
    with MispOnLoopback(events, free_port()) as misp:
        a = _sync(tmp_path, misp.url, key_file, db_url, data="replica-a")
        assert a.returncode == 0, a.stderr
        assert "since the beginning" in a.stderr
        assert _sync_point(db_url, misp.url) == 1_700_000_000
        later = _event(
            "mispevent_testfiles", "existing_event.json", published=True, timestamp=1_700_000_500
        )
        events.append(later)
        b = _sync(tmp_path, misp.url, key_file, db_url, data="replica-b")
        assert b.returncode == 0, b.stderr
        assert int(misp.requests[-1]["timestamp"]) == 1_700_000_001  # from a's point
        assert "since 1700000000" in b.stderr and f"({len(_expected(later))} new" in b.stderr
        assert _sync_point(db_url, misp.url) == 1_700_000_500
        again = _sync(tmp_path, misp.url, key_file, db_url, data="replica-a")
        assert again.returncode == 0, again.stderr
        assert int(misp.requests[-1]["timestamp"]) == 1_700_000_501  # and back: from b's
        assert "(0 new" in again.stderr and "since 1700000500" in again.stderr
    for d in ("replica-a", "replica-b"):
        assert not list((tmp_path / d).glob("misp-sync*"))  # nothing kept per replica


def test_an_older_data_directory_s_sync_point_is_imported_once(tmp_path: Path, db_url: str) -> None:
    """Upgraded from a version that kept the sync point in `misp-sync.json`: the first
    sync asks MISP only for what changed since the file's timestamp (not everything
    again); the file is imported once, audited, and renamed."""
    from sqlalchemy import select

    from core.audit import AuditRecord
    from core.db import Database

    old = _event(
        "57c4445b-c548-4654-af0b-4be3950d210f.json", published=True, timestamp=1_700_000_000
    )
    later = _event(
        "mispevent_testfiles", "existing_event.json", published=True, timestamp=1_700_000_500
    )
    key_file = tmp_path / "misp.key"
    key_file.write_text(KEY + "\n")
    data = tmp_path / "d"
    data.mkdir()
    with MispOnLoopback([old, later], free_port()) as misp:
        (data / "misp-sync.json").write_text(json.dumps({misp.url: 1_700_000_000}))
        first = _sync(tmp_path, misp.url, key_file, db_url)
        assert first.returncode == 0, first.stderr
        assert int(misp.requests[-1]["timestamp"]) == 1_700_000_001  # the file's point on
        assert "since 1700000000" in first.stderr
        assert f"({len(_expected(later))} new" in first.stderr
        assert not (data / "misp-sync.json").exists()
        assert json.loads((data / "misp-sync.json.imported").read_text()) == {
            misp.url: 1_700_000_000
        }
        again = _sync(tmp_path, misp.url, key_file, db_url)  # the database's point, not the file's
        assert again.returncode == 0, again.stderr
        assert int(misp.requests[-1]["timestamp"]) == 1_700_000_501
    db = Database(db_url)
    try:
        with db.transaction(write=False) as session:
            imports = session.scalars(
                select(AuditRecord).where(AuditRecord.action == "misp.sync_state_imported")
            ).all()
    finally:
        db.dispose()
    assert len(imports) == 1  # once, though two runs started on that data directory
    assert imports[0].detail["imported"] == {misp.url: 1_700_000_000}


def test_triage_verdicts_reach_misp_as_sightings(tmp_path: Path, db_url: str) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from api.app import create_app
    from core.settings import load_settings
    from correlator import misp as misp_link
    from correlator.sightings import SightingRow
    from correlator.store import IndicatorStore
    from rules.indicator import Indicator
    from tests.conftest import bearer, make_token
    from tests.factories import observation
    from vigia.wiring import build

    key_file = tmp_path / "misp.key"
    key_file.write_text(KEY)
    port = free_port()
    services = build(
        load_settings(
            data_dir=tmp_path / "d",
            database_url=db_url,
            misp_url=f"http://127.0.0.1:{port}",
            misp_key_file=key_file,
            incident_min_severity=101,  # the alerts stay in the queue, triaged one by one
        )
    )
    client = TestClient(create_app(services))
    with services.db.transaction() as s:
        IndicatorStore.save(
            s,
            [
                Indicator("hostname", "c2.example", "CIRCL"),
                Indicator("ip-dst", "203.0.113.50", "CIRCL"),
            ],
        )
    sensor, analyst = (
        make_token(services, Role.SENSOR, name="sensor-1"),
        make_token(services, Role.ANALYST),
    )
    docs = [observation(dns__question__name="c2.example"), observation(dst="203.0.113.50")]
    client.post(
        "/api/v1/observations",
        headers=bearer(sensor),
        json={"batch_id": "batch-sight", "observations": docs},
    )
    alerts = {
        a["threat"]["enrichments"][0]["indicator"]["value"]: a["event"]["id"]
        for a in client.get("/api/v1/alerts", headers=bearer(analyst)).json()["alerts"]
    }
    h = bearer(analyst)
    client.patch(
        f"/api/v1/alerts/{alerts['c2.example']}", headers=h, json={"status": "acknowledged"}
    )
    client.patch(
        f"/api/v1/alerts/{alerts['203.0.113.50']}",
        headers=h,
        json={"status": "dismissed", "reason": "false_positive"},
    )
    server = misp_link.server(services.settings)
    assert server is not None
    # MISP is down: nothing is lost, the outbox keeps both, with the error.
    from rules.sources.mispsync import SyncError

    with pytest.raises(SyncError, match=r"127\.0\.0\.1"):
        misp_link.deliver_sightings(services.db, server)
    with services.db.transaction(write=False) as s:
        rows = s.execute(select(SightingRow)).scalars().all()
        assert [(r.value, r.type, r.sent_at) for r in rows] == [
            ("c2.example", "0", None),
            ("203.0.113.50", "1", None),
        ]
    with MispOnLoopback([], port) as misp:
        assert misp_link.deliver_sightings(services.db, server) == (2, 0)
        assert misp_link.deliver_sightings(services.db, server) == (0, 0)  # sent once
    assert [(x["value"], x["type"], x["source"]) for x in misp.sightings] == [
        ("c2.example", "0", "vigia"),
        ("203.0.113.50", "1", "vigia"),
    ]
    services.close()


def test_sources_report_each_run(tmp_path: Path, db_url: str) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.settings import load_settings
    from correlator import misp as misp_link
    from rules.sources.mispsync import MispServer, SyncError
    from tests.conftest import bearer, make_token
    from vigia.wiring import build

    services = build(
        load_settings(data_dir=tmp_path / "d", database_url=db_url, warninglists=False)
    )
    client = TestClient(create_app(services))
    analyst = make_token(services, Role.ANALYST)
    client.post(
        "/api/v1/indicators",
        headers=bearer(analyst),
        files={"file": ("feed.csv", b"type,value\nip-dst,192.0.2.9\nip-dst,bad\n")},
    )
    port = free_port()
    server = MispServer(f"http://127.0.0.1:{port}", KEY)
    with pytest.raises(SyncError):  # nothing listens: the run fails, and says so
        misp_link.sync(services.db, services.take_in, server)
    listed = {s["name"]: s for s in client.get("/api/v1/sources", headers=bearer(analyst)).json()}
    assert listed["feed.csv"]["status"] == "ok"
    assert listed["feed.csv"]["counters"]["indicators"] == 1
    assert listed["feed.csv"]["counters"]["rejected"] == 1
    assert listed[server.url]["status"] == "error" and listed[server.url]["last_ok"] is None
    assert str(port) in listed[server.url]["message"]
    with MispOnLoopback(
        [
            _event(
                "57c4445b-c548-4654-af0b-4be3950d210f.json", published=True, timestamp=1_700_000_000
            )
        ],
        port,
    ):
        misp_link.sync(services.db, services.take_in, server)
    again = {s["name"]: s for s in client.get("/api/v1/sources", headers=bearer(analyst)).json()}
    assert again[server.url]["status"] == "ok" and again[server.url]["counters"]["new"] > 0
    services.close()


def _numbered_events(n: int) -> list[dict[str, Any]]:
    """`n` published events of one to_ids address each (198.51.100.1 ...), timestamps
    1_700_000_001 ... in order."""
    return [
        {
            "Event": {
                "uuid": f"20000000-0000-4000-8000-{e:012x}",
                "info": f"event {e}",
                "published": True,
                "timestamp": str(1_700_000_000 + e),
                "threat_level_id": "2",
                "Orgc": {"name": "CIRCL"},
                "Attribute": [{"type": "ip-dst", "value": f"198.51.100.{e}", "to_ids": True}],
            }
        }
        for e in range(1, n + 1)
    ]


def _version(services: Any) -> int:
    from correlator.store import IndicatorStore

    with services.db.transaction(write=False) as s:
        return IndicatorStore.version(s)[0]


def _held(services: Any) -> set[str]:
    from correlator.store import IndicatorStore

    with services.db.transaction(write=False) as s:
        return {i.value for i in IndicatorStore.load_all(s) if i.provider == "CIRCL"}


@pytest.mark.parametrize("paging", [True, False])
def test_a_sync_reads_every_page(tmp_path: Path, db_url: str, paging: bool) -> None:
    """Events a page at a time (`limit`, `page`) until a short page; a server that
    ignores paging (every event each time) is read once, not looped over."""
    from core.settings import load_settings
    from correlator import misp as misp_link
    from rules.sources.mispsync import MispServer
    from vigia.wiring import build

    services = build(
        load_settings(data_dir=tmp_path / "d", database_url=db_url, warninglists=False)
    )
    events = _numbered_events(5)
    if not paging:  # and no uuids: the first page is known again by its first event's info
        for event in events:
            del event["Event"]["uuid"]
    with MispOnLoopback(events, free_port(), paging=paging) as misp:
        server = MispServer(misp.url, KEY, page_events=5 if not paging else 2)
        out = misp_link.sync(services.db, services.take_in, server)
    asked = [(q.get("limit"), q.get("page")) for q in misp.requests]
    if paging:
        assert asked == [(2, 1), (2, 2), (2, 3)]  # the third page is short: the last
    else:
        assert asked == [(5, 1), (5, 2)]  # page 2 was page 1 again: the server does not page
    assert out.intake.loaded == 5 and out.latest == 1_700_000_005
    assert _held(services) == {f"198.51.100.{e}" for e in range(1, 6)}
    services.close()


def test_a_page_that_fails_takes_in_nothing(tmp_path: Path, db_url: str) -> None:
    """Page 2 of 3 fails: the sync is one error, on record; nothing of page 1 is taken in
    and the sync point stays, so the next run asks for the same events again."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.settings import load_settings
    from correlator import misp as misp_link
    from rules.sources.mispsync import MispServer, SyncError
    from tests.conftest import bearer, make_token
    from vigia.wiring import build

    services = build(
        load_settings(data_dir=tmp_path / "d", database_url=db_url, warninglists=False)
    )
    port = free_port()
    server = MispServer(f"http://127.0.0.1:{port}", KEY, page_events=2)
    with MispOnLoopback(_numbered_events(5), port, fail_page=2) as misp:
        with pytest.raises(SyncError, match=str(port)):
            misp_link.sync(services.db, services.take_in, server)
        assert [q.get("page") for q in misp.requests] == [1, 2]
    assert _held(services) == set()
    assert misp_link.sync_point(services.db, server.url) is None
    client = TestClient(create_app(services))
    analyst = bearer(make_token(services, Role.ANALYST))
    listed = {s["name"]: s for s in client.get("/api/v1/sources", headers=analyst).json()}
    assert listed[server.url]["status"] == "error"
    with MispOnLoopback(_numbered_events(5), port):
        out = misp_link.sync(services.db, services.take_in, server)
    assert out.since is None and out.intake.new == 5
    services.close()


def test_a_full_sync_that_finds_nothing_changed_writes_nothing(tmp_path: Path, db_url: str) -> None:
    """`--full` again with nothing changed at the server writes nothing but its audit
    entry (the store's indicator version stays): the pages, spooled, are found the same
    as the last full intake (their digest, kept whether that one was spooled, as on
    SQLite, or streamed, as a first sync on PostgreSQL is) and not read again; the entry
    says so, with the same counts. Once an event changes, it is written."""
    from sqlalchemy import select

    from core.audit import AuditRecord
    from core.settings import load_settings
    from correlator import misp as misp_link
    from rules.sources.mispsync import MispServer
    from vigia.wiring import build

    services = build(load_settings(data_dir=tmp_path / "d", database_url=db_url))
    events = _numbered_events(3)
    events[0]["Event"]["Attribute"] += [
        {"type": "ip-dst", "value": "bad", "to_ids": True},  # rejected by the pull
        {"type": "ip-dst", "value": "8.8.8.8", "to_ids": True},  # caught by a warninglist
    ]
    with MispOnLoopback(events, free_port()) as misp:
        server = MispServer(misp.url, KEY, page_events=2)
        first = misp_link.sync(services.db, services.take_in, server)
        version = _version(services)
        again = misp_link.sync(services.db, services.take_in, server, full=True)
        assert _version(services) == version
        events[1]["Event"]["Attribute"][0]["value"] = "198.51.100.99"
        changed = misp_link.sync(services.db, services.take_in, server, full=True)
    assert (first.intake.new, again.intake.new, changed.intake.new) == (3, 0, 1)
    with services.db.transaction(write=False) as s:
        loads = s.scalars(
            select(AuditRecord)
            .where(AuditRecord.action == "indicators.load")
            .order_by(AuditRecord.seq)
        ).all()
    assert [x.detail.get("unchanged") is not None for x in loads] == [False, True, False]
    assert loads[1].detail["indicators"] == 3
    assert loads[1].detail["skipped"] == loads[0].detail["skipped"]
    assert sorted(k.split(":")[0] for k in loads[0].detail["skipped"]) == [
        "rejected",
        "warninglist",
    ]
    assert _version(services) > version
    assert "198.51.100.99" in _held(services)
    services.close()
