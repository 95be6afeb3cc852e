"""An incident's indicators pushed to the CERT's MISP (pymisp, the loopback MISP
stand-in): distribution and sharing group from the TLP, RED kept home, the outbox
keeping what a MISP that is down did not take, an event edited when shared again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from core.audit import AuditRecord
from core.settings import load_settings
from tests.centre import free_port
from tests.incident_helpers import incidents, seen, world
from tests.mispserver import KEY, MispOnLoopback
from vigia import scheduler
from vigia.wiring import Services, build

GROUP = {"id": "7", "uuid": "5f0c3e2a-1b4d-4c8e-9a6f-2d7e8b9c0a11", "name": "Vigía TLP:AMBER"}


@pytest.fixture
def sharing(tmp_path: Path, db_url: str) -> Iterator[tuple[Services, int]]:
    key_file = tmp_path / "misp.key"
    key_file.write_text(KEY)
    port = free_port()
    services = build(
        load_settings(
            data_dir=tmp_path / "d",
            database_url=db_url,
            misp_url=f"http://127.0.0.1:{port}",
            misp_key_file=key_file,
            observer_name="CSIRT-TEST",
        )
    )
    yield services, port
    services.close()


def _observe(
    client: TestClient, h: dict[str, Any], inc_id: int, type_: str, value: str, tlp: str
) -> None:
    r = client.post(
        f"/api/v1/incidents/{inc_id}/observables",
        json={"type": type_, "value": value, "tlp": tlp},
        headers=h,
    )
    assert r.status_code in (200, 201, 204), r.text


def _attrs(event: dict[str, Any]) -> dict[str, tuple[int, list[str], str | None]]:
    return {
        a["value"]: (
            int(a["distribution"]),
            [t["name"] for t in a.get("Tag", [])],
            a.get("sharing_group_id") or None,
        )
        for a in event["Attribute"]
    }


def test_an_incident_lands_in_misp_as_an_event(sharing: tuple[Services, int]) -> None:
    services, port = sharing
    client = TestClient(create_app(services))
    h = world(services)
    seen(client, h, "evil.example")  # an alert of ent-a: an AMBER incident
    inc = incidents(client, h["analyst"])[0]
    assert inc["tlp"] == "AMBER"
    _observe(client, h["analyst"], inc["id"], "ip-dst", "198.51.100.20", "clear")
    _observe(client, h["analyst"], inc["id"], "sha256", "cd" * 32, "amber+strict")
    _observe(client, h["analyst"], inc["id"], "domain", "secret.example", "red")
    url = f"/api/v1/incidents/{inc['id']}/share/misp"

    # MISP is down: the share waits in the outbox, with the reason.
    r = client.post(url, headers=h["analyst"])
    assert r.status_code == 202, r.text
    first = r.json()
    assert first["status"] == "pending" and "127.0.0.1" in first["last_error"]
    assert first["distribution"] == 4 and first["attributes"] == 3
    with services.db.transaction(write=False) as s:
        record = (
            s.execute(select(AuditRecord).where(AuditRecord.action == "incident.share.misp"))
            .scalars()
            .all()
        )
    assert [(e.actor, e.object_id) for e in record] == [("analyst:analyst", str(inc["id"]))]

    # The MISP job delivers it once MISP answers.
    with MispOnLoopback([], port, sharing_groups=[GROUP]) as misp:
        scheduler.misp_job(services)
        assert list(misp.pushed) == [first["event_uuid"]]
        event = misp.pushed[first["event_uuid"]]
        assert event["info"].startswith("[CSIRT-TEST]")
        assert (int(event["distribution"]), int(event["sharing_group_id"])) == (4, 7)
        assert "Object" not in event or not event["Object"]  # the constituency's hosts stay home
        assert _attrs(event) == {
            "evil.example": (5, ["tlp:amber"], None),  # inherits the event's
            "198.51.100.20": (5, ["tlp:amber"], None),  # no freer than its incident
            "cd" * 32: (0, ["tlp:amber+strict"], None),  # this organisation only
        }
        # Shared again with one more indicator: the same event, edited.
        _observe(client, h["analyst"], inc["id"], "domain", "more.example", "green")
        again = client.post(url, headers=h["analyst"]).json()
        assert again["status"] == "sent" and again["event_uuid"] == first["event_uuid"]
        assert list(misp.pushed) == [first["event_uuid"]]
        assert "more.example" in _attrs(misp.pushed[first["event_uuid"]])
        scheduler.misp_job(services)  # nothing waits: nothing sent twice
        assert misp.pushed[first["event_uuid"]]["id"] == "1"

    # A MISP without that sharing group: the event stays with this organisation.
    with MispOnLoopback([], port) as bare:
        client.post(url, headers=h["analyst"])
        assert int(bare.pushed[first["event_uuid"]]["distribution"]) == 0


def test_what_may_not_leave_is_refused(sharing: tuple[Services, int], tmp_path: Path) -> None:
    services, port = sharing
    client = TestClient(create_app(services))
    h = world(services)
    seen(client, h, "evil.example")
    inc = incidents(client, h["analyst"])[0]
    r = client.patch(
        f"/api/v1/incidents/{inc['id']}",
        json={"version": inc["version"], "tlp": "red"},
        headers=h["analyst"],
    )
    assert r.status_code == 200, r.text
    url = f"/api/v1/incidents/{inc['id']}/share/misp"
    refused = client.post(url, headers=h["analyst"])
    assert refused.status_code == 409 and "RED" in refused.json()["detail"]
    assert (
        client.post("/api/v1/incidents/424242/share/misp", headers=h["analyst"]).status_code == 404
    )
    assert client.post(url, headers=h["a"]).status_code == 403  # an entity does not push
    # A GREEN incident goes to the community.
    seen(client, h, "other.example", src="10.2.3.4")
    green = next(i for i in incidents(client, h["analyst"]) if i["id"] != inc["id"])
    client.patch(
        f"/api/v1/incidents/{green['id']}",
        json={"version": green["version"], "tlp": "green"},
        headers=h["analyst"],
    )
    with MispOnLoopback([], port):
        out = client.post(f"/api/v1/incidents/{green['id']}/share/misp", headers=h["analyst"])
    assert out.json()["status"] == "sent" and out.json()["distribution"] == 1
    # No MISP configured: said so.
    bare = build(load_settings(data_dir=tmp_path / "bare"))
    try:
        bare_client, hb = TestClient(create_app(bare)), world(bare)
        seen(bare_client, hb, "evil.example")
        one = incidents(bare_client, hb["analyst"])[0]
        r = bare_client.post(f"/api/v1/incidents/{one['id']}/share/misp", headers=hb["analyst"])
        assert r.status_code == 409 and "VIGIA_MISP_URL" in r.json()["detail"]
    finally:
        bare.close()
