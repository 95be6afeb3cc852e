"""Incidents: grouping alerts, the lifecycle, optimistic locking, merge and split, audit."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core import audit
from tests.incident_helpers import T0, incidents, move, seen, world
from vigia.wiring import Services

HOUR = 3600.0


@pytest.fixture
def h(services: Services) -> dict[str, dict[str, str]]:
    return world(services)


def test_alerts_group_by_entity_indicator_event_and_host(
    client: TestClient, h: dict[str, dict[str, str]]
) -> None:
    seen(client, h, "www.evil.example")  # opens an incident for A
    seen(client, h, "evil.example", ts=T0 + 60)  # same indicator: joins
    seen(client, h, "other.example", src="10.1.9.9", ts=T0 + 120)  # same MISP event: joins
    seen(client, h, "third.example", ts=T0 + 180)  # same internal host 10.1.1.5: joins
    seen(client, h, "evil.example", src="10.2.0.7", ts=T0 + 240)  # entity B: its own incident
    seen(client, h, "weak.example", src="10.1.3.3", ts=T0 + 300)  # too weak to open one
    seen(client, h, "third.example", src="10.1.7.7", ts=T0 + 30 * HOUR)  # past the window
    found = incidents(client, h["analyst"])
    by_entity: dict[str, list[dict[str, Any]]] = {}
    for inc in found:
        by_entity.setdefault(inc["entities"][0]["id"], []).append(inc)
    assert len(by_entity["ent-b"]) == 1 and len(by_entity["ent-a"]) == 2
    first = client.get(f"/api/v1/incidents/{min(i['id'] for i in found)}", headers=h["analyst"])
    detail = first.json()
    assert len(detail["alerts"]) == 4
    assert {o["value"] for o in detail["observables"]} == {
        "www.evil.example",
        "evil.example",
        "other.example",
        "third.example",
    }
    assert detail["title"].startswith("Indicador domain www.evil.example — Entidad A")
    assert detail["status"] == "new" and detail["priority"] == "P3"  # severity 70 → NCISS 2
    assert detail["occurred_at"] == "2023-11-14T22:13:20.000Z"
    weak = client.get("/api/v1/alerts", params={"status": "new"}, headers=h["analyst"]).json()[
        "alerts"
    ]
    assert [a["threat"]["enrichments"][0]["matched"]["atomic"] for a in weak] == ["weak.example"]
    in_inc = client.get("/api/v1/alerts", params={"status": "in_incident"}, headers=h["analyst"])
    assert all(a["vigia"]["incident"] for a in in_inc.json()["alerts"])


def test_every_transition_and_the_refused_ones(
    client: TestClient, h: dict[str, dict[str, str]]
) -> None:
    an = h["analyst"]
    inc = client.post("/api/v1/incidents", json={"title": "Llamada de la entidad"}, headers=an)
    assert inc.status_code == 201, inc.text
    cur = inc.json()
    assert cur["transitions"] == ["triaged", "closed"]
    r = move(client, an, cur, "contained")
    assert r.status_code == 409 and "allowed: triaged, closed" in r.json()["detail"]
    r = move(client, an, cur, "closed", resolution="true_positive_with_impact")
    assert r.status_code == 422  # closing straight from new is for false positives/duplicates
    walk = [
        ("triaged", {}),
        ("in_progress", {}),
        ("contained", {}),
        ("in_progress", {}),  # containment failed
        ("resolved", {}),
        ("closed", {"resolution": "true_positive_with_impact"}),
        ("in_progress", {}),  # reopen
        ("resolved", {}),
        ("closed", {"resolution": "true_positive_without_impact"}),
    ]
    for to, extra in walk:
        r = move(client, an, cur, to, **extra)
        assert r.status_code == 200, (to, r.text)
        assert r.json()["version"] > cur["version"]
        cur = r.json()
        assert cur["status"] == to
    assert cur["resolution"] == "true_positive_without_impact"
    assert cur["acknowledged_at"] and cur["contained_at"] and cur["closed_at"]
    r = move(client, an, cur, "closed")
    assert r.status_code == 409 and "allowed: in_progress" in r.json()["detail"]
    r = move(client, an, cur, "in_progress", resolution="duplicate")
    assert r.status_code == 422
    kinds = [e["data"]["to"] for e in cur["timeline"] if e["kind"] == "status"]
    assert kinds == [t for t, _ in walk]
    # A false positive closes from new; the auditor cannot move anything.
    fp = client.post("/api/v1/incidents", json={"title": "ruido"}, headers=an).json()
    assert move(client, h["auditor"], fp, "triaged").status_code == 403
    r = move(client, an, fp, "closed", resolution="false_positive")
    assert r.status_code == 200 and r.json()["resolved_at"]


def test_a_stale_version_gets_409(client: TestClient, h: dict[str, dict[str, str]]) -> None:
    an = h["analyst"]
    inc = client.post("/api/v1/incidents", json={"title": "uno"}, headers=an).json()
    url = f"/api/v1/incidents/{inc['id']}"
    first = client.patch(url, json={"version": inc["version"], "title": "dos"}, headers=an)
    assert first.status_code == 200 and first.json()["title"] == "dos"
    stale = client.patch(url, json={"version": inc["version"], "summary": "x"}, headers=an)
    assert stale.status_code == 409 and "reload" in stale.json()["detail"]
    assert move(client, an, inc, "triaged").status_code == 409
    assert client.get(url, headers=an).json()["summary"] == ""  # the stale write left nothing


def test_fields_are_checked_against_the_vocabularies(
    client: TestClient, h: dict[str, dict[str, str]]
) -> None:
    an = h["analyst"]
    inc = client.post("/api/v1/incidents", json={"title": "x"}, headers=an).json()
    url = f"/api/v1/incidents/{inc['id']}"
    bad = [
        ({"rsit_class": "malicious-code", "rsit_type": "phishing"}, 422, "not in malicious-code"),
        ({"rsit_class": "nonsense"}, 422, "RSIT class"),
        ({"tlp": "purple"}, 422, "tlp"),
        ({"ncciss": 9}, 422, "ncciss"),
    ]
    for body, code, reason in bad:
        r = client.patch(url, json={"version": inc["version"], **body}, headers=an)
        assert r.status_code == code and reason in r.text, (body, r.text)
    r = client.patch(
        url,
        json={
            "version": inc["version"],
            "rsit_class": "malicious-code",
            "rsit_type": "c2-server",
            "ncciss": 4,
            "tlp": "amber+strict",
            "pap": "red",
        },
        headers=an,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["priority"] == "P1" and body["rsit"] == {
        "class": "malicious-code",
        "type": "c2-server",
    }
    assert body["tlp"] == "AMBER+STRICT" and body["pap"] == "RED"
    # P1's due times run from the opening: an hour to acknowledge.
    assert body["due"]["acknowledge"] < body["due"]["contain"] < body["due"]["resolve"]


def test_promote_merge_split_and_link(client: TestClient, h: dict[str, dict[str, str]]) -> None:
    an = h["analyst"]
    seen(client, h, "weak.example")  # too weak for an incident of its own
    seen(client, h, "weak.example", src="10.2.0.1")
    alerts = client.get("/api/v1/alerts", params={"status": "new"}, headers=an).json()["alerts"]
    ids = {a["organization"]["id"]: a["event"]["id"] for a in alerts}
    a_inc = client.post(
        "/api/v1/incidents", json={"alert_ids": [ids["ent-a"]], "title": "A"}, headers=an
    ).json()
    again = client.post("/api/v1/incidents", json={"alert_ids": [ids["ent-a"]]}, headers=an)
    assert again.status_code == 409  # an alert is in one incident at a time
    b_inc = client.post("/api/v1/incidents", json={"alert_ids": [ids["ent-b"]]}, headers=an).json()
    merged = client.post(
        f"/api/v1/incidents/{a_inc['id']}/merge",
        json={"version": a_inc["version"], "incident_ids": [b_inc["id"]]},
        headers=an,
    )
    assert merged.status_code == 200, merged.text
    m = merged.json()
    assert {e["id"] for e in m["entities"]} == {"ent-a", "ent-b"} and len(m["alerts"]) == 2
    gone = client.get(f"/api/v1/incidents/{b_inc['id']}", headers=an).json()
    assert gone["status"] == "closed" and gone["resolution"] == "duplicate"
    assert gone["merged_into"] == a_inc["id"] and gone["transitions"] == []
    split = client.post(
        f"/api/v1/incidents/{a_inc['id']}/split",
        json={"version": m["version"], "alert_ids": [ids["ent-b"]], "title": "B otra vez"},
        headers=an,
    )
    assert split.status_code == 201, split.text
    new = split.json()
    assert [e["id"] for e in new["entities"]] == ["ent-b"] and new["title"] == "B otra vez"
    left = client.get(f"/api/v1/incidents/{a_inc['id']}", headers=an).json()
    assert [e["id"] for e in left["entities"]] == ["ent-a"] and len(left["alerts"]) == 1
    # Linking by hand: the split-off alert cannot be linked while it is in the new incident.
    r = client.post(
        f"/api/v1/incidents/{a_inc['id']}/alerts",
        json={"version": left["version"], "alert_ids": [ids["ent-b"]]},
        headers=an,
    )
    assert r.status_code == 409
    r = client.post(
        f"/api/v1/incidents/{a_inc['id']}/alerts",
        json={"version": left["version"], "alert_ids": ["0" * 32]},
        headers=an,
    )
    assert r.status_code == 404


def test_dismissing_an_alert_takes_it_out_of_its_incident(
    client: TestClient, h: dict[str, dict[str, str]]
) -> None:
    an = h["analyst"]
    seen(client, h, "evil.example")
    inc = incidents(client, an)[0]
    detail = client.get(f"/api/v1/incidents/{inc['id']}", headers=an).json()
    aid = detail["alerts"][0]["id"]
    r = client.patch(f"/api/v1/alerts/{aid}", json={"status": "acknowledged"}, headers=an)
    assert r.status_code == 409
    r = client.patch(
        f"/api/v1/alerts/{aid}",
        json={"status": "dismissed", "reason": "false_positive"},
        headers=an,
    )
    assert r.status_code == 200 and r.json()["vigia"] == {"status": "dismissed", "incident": None}
    after = client.get(f"/api/v1/incidents/{inc['id']}", headers=an).json()
    assert after["alerts"] == [] and after["timeline"][-1]["kind"] == "dismissed"


def test_notes_tasks_and_every_change_is_audited(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    an = h["analyst"]
    inc = client.post("/api/v1/incidents", json={"title": "x"}, headers=an).json()
    base = f"/api/v1/incidents/{inc['id']}"
    assert client.post(f"{base}/notes", json={"body": "  "}, headers=an).status_code == 422
    assert client.post(f"{base}/notes", json={"body": "visto"}, headers=an).status_code == 201
    task = client.post(f"{base}/tasks", json={"title": "aislar host"}, headers=an).json()
    done = client.patch(
        f"{base}/tasks/{task['id']}", json={"version": task["version"], "done": True}, headers=an
    )
    assert done.status_code == 200 and done.json()["status"] == "done"
    stale = client.patch(
        f"{base}/tasks/{task['id']}", json={"version": task["version"], "done": False}, headers=an
    )
    assert stale.status_code == 409
    detail = client.get(base, headers=an).json()
    assert detail["tasks"][0]["status"] == "done"
    assert [e["kind"] for e in detail["timeline"]] == ["opened", "note", "task", "task"]
    with services.db.transaction(write=False) as s:
        q = select(audit.AuditRecord).where(audit.AuditRecord.object_id == str(inc["id"]))
        actions = [r.action for r in s.execute(q.order_by(audit.AuditRecord.seq)).scalars()]
        assert audit.verify(s).ok
    assert actions == ["incident.open", "incident.note", "incident.task.add", "incident.task.set"]


def test_triage_and_false_positive_closure_reach_misp_as_sightings(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    from correlator.sightings import SightingRow

    seen(client, h, "evil.example")
    seen(client, h, "evil.example", src="10.2.0.9")
    a, b = sorted(incidents(client, h["analyst"]), key=lambda i: i["entities"][0]["id"])
    move(client, h["analyst"], a, "triaged")
    move(client, h["analyst"], b, "closed", resolution="false_positive")
    with services.db.transaction(write=False) as s:
        rows = s.execute(select(SightingRow).order_by(SightingRow.id)).scalars().all()
        assert [(r.value, r.type) for r in rows] == [("evil.example", "0"), ("evil.example", "1")]


def test_queue_filters_and_cursor_pagination(
    client: TestClient, h: dict[str, dict[str, str]]
) -> None:
    an = h["analyst"]
    made = [
        client.post(
            "/api/v1/incidents", json={"title": f"inc {n}", "ncciss": n % 4}, headers=an
        ).json()["id"]
        for n in range(7)
    ]
    seen_ids: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/incidents", params=params, headers=an).json()
        seen_ids += [i["id"] for i in page["incidents"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen_ids == sorted(made, reverse=True)  # newest first, each once
    p2 = incidents(client, an, priority="P2")  # NCISS 3
    assert {i["title"] for i in p2} == {"inc 3"}
    assert incidents(client, an, status="open") and incidents(client, an, status="closed") == []
    bad = client.get("/api/v1/incidents", params={"cursor": "nonsense"}, headers=an)
    assert bad.status_code == 422 and "cursor" in bad.json()["detail"]
    assert client.get("/api/v1/incidents", params={"status": "x"}, headers=an).status_code == 422


def test_observables_by_hand_are_checked_and_normalised(
    client: TestClient, h: dict[str, dict[str, str]]
) -> None:
    an = h["analyst"]
    inc = client.post("/api/v1/incidents", json={"title": "x"}, headers=an).json()
    url = f"/api/v1/incidents/{inc['id']}/observables"
    r = client.post(url, json={"type": "domain", "value": "Malo.EXAMPLE."}, headers=an)
    assert r.status_code == 201 and r.json()["observables"][0]["value"] == "malo.example"
    assert (
        client.post(url, json={"type": "ip-dst", "value": "300.1.1.1"}, headers=an).status_code
        == 422
    )
    assert client.post(url, json={"type": "nonsense", "value": "x"}, headers=an).status_code == 422


def test_sla_hours_come_from_configuration_and_bad_ones_stop_the_start(tmp_path: Any) -> None:
    from core.settings import SettingsError, load_settings
    from vigia.wiring import build

    config = tmp_path / "vigia.toml"
    config.write_text("[vigia.sla_hours.P3]\nacknowledge = 2\n")
    import os

    os.environ["VIGIA_CONFIG"] = str(config)
    try:
        settings = load_settings(data_dir=tmp_path / "d")
    finally:
        del os.environ["VIGIA_CONFIG"]
    assert settings.sla_hours["P3"]["acknowledge"] == 2.0
    assert settings.sla_hours["P3"]["contain"] == 168.0  # the rest keep their defaults
    services = build(settings)
    try:
        client = TestClient(__import__("api.app").app.create_app(services))
        h = world(services)
        body = {"title": "x", "ncciss": 2}  # P3
        inc = client.post("/api/v1/incidents", json=body, headers=h["analyst"]).json()
        from datetime import datetime

        opened = datetime.fromisoformat(inc["created_at"].replace("Z", "+00:00"))
        due = datetime.fromisoformat(inc["due"]["acknowledge"].replace("Z", "+00:00"))
        assert round((due - opened).total_seconds()) == 2 * 3600
    finally:
        services.close()
    for bad in ({"P9": {"acknowledge": 1}}, {"P1": {"lunch": 1}}, {"P1": {"contain": 0}}):
        with pytest.raises(SettingsError, match="SLA_HOURS"):
            load_settings(sla_hours=bad)


def test_the_scheduled_job_groups_stragglers_records_breaches_and_sends(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    from correlator.rows import AlertRow
    from incidents.models import NotificationRow, SlaBreachRow
    from vigia import scheduler

    seen(client, h, "evil.example")
    with services.db.transaction() as s:  # as if grouping had failed inside ingest
        row = s.execute(select(AlertRow)).scalar_one()
        inc_id = row.incident_id
        row.incident_id, row.status = None, "new"
        from incidents.models import IncidentRow

        s.delete(s.get(IncidentRow, inc_id))
    from certification.registry import Registry

    with services.db.transaction() as s:
        Registry.set_contacts(s, "ent-a", [{"email": "so@a.gob.bo"}], "", "", "t")
    scheduler.incidents_job(services)
    inc = incidents(client, h["analyst"])[0]
    client.post(f"/api/v1/incidents/{inc['id']}/notifications", json={}, headers=h["analyst"])
    scheduler.incidents_job(services)  # no SMTP configured: the notice waits, with the reason
    with services.db.transaction(write=False) as s:
        n = s.execute(select(NotificationRow)).scalar_one()
        assert n.status == "pending" and n.attempts == 1 and "VIGIA_SMTP_HOST" in n.last_error
        assert s.execute(select(SlaBreachRow)).first() is None


def test_grouping_finds_incidents_by_stored_keys_and_the_sweep_backfills_them(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    from correlator.rows import AlertRow
    from incidents import grouping
    from incidents.models import AlertKeyRow

    seen(client, h, "www.evil.example")
    with services.db.transaction() as s:  # as if stored before alerts had keys
        first = s.execute(select(AlertRow)).scalar_one()
        assert set(s.execute(select(AlertKeyRow.key)).scalars()) == grouping.digests(first.doc)
        s.execute(AlertKeyRow.__table__.delete())
    seen(client, h, "evil.example", ts=T0 + 60)  # shares the value, but nothing says so yet
    assert len(incidents(client, h["analyst"])) == 2
    with services.db.transaction() as s:
        assert grouping.backfill(s) == 1  # the first alert sits in its incident keyless
        assert grouping.backfill(s) == 0
    seen(client, h, "a.evil.example", ts=T0 + 120)
    found = incidents(client, h["analyst"])
    assert len(found) == 2  # joined the most recently alerted of the two
    latest = max(found, key=lambda i: i["id"])
    detail = client.get(f"/api/v1/incidents/{latest['id']}", headers=h["analyst"]).json()
    assert len(detail["alerts"]) == 2
