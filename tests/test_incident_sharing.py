"""Incidents and the entities: notification by SMTP and signed webhook, the entity's
acknowledgement and replies, SLA breaches, entity isolation and TLP on every route,
metrics, and the MISP / STIX exports checked by pymisp's and the STIX validators."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from certification.registry import Registry
from core.clock import utcnow
from core.settings import load_settings
from incidents import notify, sla
from tests.centre import free_port
from tests.conftest import make_token
from tests.incident_helpers import incidents, move, seen, world
from tests.mailbox import Inbox, smtp_server
from vigia.wiring import Services, build, contact_book

SECRET = "s3cret-webhook-key-of-32-chars!!"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server (aiosmtpd) on loopback."""
    with smtp_server() as running:
        yield running


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """An HTTP receiver on loopback that keeps what it is sent."""
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/cert", got
    finally:
        server.shutdown()


@pytest.fixture
def mailing(tmp_path: Any, db_url: str, smtp: tuple[int, Inbox]) -> Iterator[Services]:
    s = build(
        load_settings(
            data_dir=tmp_path / "data",
            database_url=db_url,
            smtp_host="127.0.0.1",
            smtp_port=smtp[0],
            smtp_from="cert@cert.gob.bo",
            public_url="https://vigia.cert.gob.bo",
            # The receiver is on loopback over http: the admin's allow-list names it.
            webhook_allow_http=True,
            webhook_allow_networks=["127.0.0.0/8"],
        )
    )
    yield s
    s.close()


def test_notification_by_mail_and_signed_webhook_then_the_entity_answers(
    mailing: Services,
    smtp: tuple[int, Inbox],
    webhook: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    client = TestClient(__import__("api.app").app.create_app(mailing))
    h = world(mailing)
    url, received = webhook
    with mailing.db.transaction() as s:
        Registry.set_contacts(
            s,
            "ent-a",
            [{"name": "Oficial A", "email": "seguridad@a.gob.bo"}],
            url,
            SECRET,
            "t",
            mailing.webhook_targets,
        )
    seen(client, h, "evil.example")
    inc = incidents(client, h["analyst"])[0]
    r = move(client, h["analyst"], inc, "triaged")  # triage notifies the entities
    assert r.status_code == 200, r.text
    ent = r.json()["entities"][0]
    assert ent["notified_at"] and ent["reply_due"] and ent["acknowledged_at"] is None
    with mailing.db.transaction() as s:
        targets = mailing.webhook_targets
        assert notify.deliver(s, mailing.mailer, contact_book, targets) == (2, 0)
        assert notify.deliver(s, mailing.mailer, contact_book, targets) == (0, 0)  # sent once
    (mail,) = smtp[1].messages
    assert mail["To"] == "seguridad@a.gob.bo" and mail["From"] == "cert@cert.gob.bo"
    assert mail["Subject"].startswith(f"[TLP:AMBER] Incidente #{inc['id']} (P3)")
    text = mail.get_payload(decode=True).decode()
    assert f"https://vigia.cert.gob.bo/console/incidentes/{inc['id']}" in text
    assert "acuse recibo" in text
    ((headers, body),) = received
    ts = headers["x-vigia-timestamp"]
    assert headers["x-vigia-signature"] == notify.sign(SECRET, ts, body)
    assert notify.sign("another-secret-entirely-000000000", ts, body) != notify.sign(
        SECRET, ts, body
    )
    payload = json.loads(body)
    assert payload["type"] == "incident.notification" and payload["entity"] == "ent-a"
    # The entity acknowledges and replies through the API; the CERT sees both.
    base = f"/api/v1/incidents/{inc['id']}"
    ack = client.post(f"{base}/acknowledgement", headers=h["a"])
    assert ack.status_code == 200 and ack.json()["first"] is True
    assert client.post(f"{base}/acknowledgement", headers=h["a"]).json()["first"] is False
    rep = client.post(f"{base}/replies", json={"body": "Host aislado."}, headers=h["a"])
    assert rep.status_code == 201, rep.text
    detail = client.get(base, headers=h["analyst"]).json()
    kinds = [(e["kind"], e.get("entity")) for e in detail["timeline"]]
    assert ("ack", "ent-a") in kinds and ("reply", "ent-a") in kinds
    assert detail["entities"][0]["acknowledged_at"] and detail["entities"][0]["replied_at"]


def test_a_mail_server_that_is_down_delays_but_loses_nothing(
    services: Services, smtp: tuple[int, Inbox]
) -> None:
    client = TestClient(__import__("api.app").app.create_app(services))
    h = world(services)
    with services.db.transaction() as s:
        Registry.set_contacts(s, "ent-a", [{"email": "so@a.gob.bo"}], "", "", "t")
    seen(client, h, "evil.example")
    inc = incidents(client, h["analyst"])[0]
    r = client.post(f"/api/v1/incidents/{inc['id']}/notifications", json={}, headers=h["analyst"])
    assert r.status_code == 202 and r.json() == {"queued": 1}
    down = notify.Mailer("127.0.0.1", free_port(), "cert@x")
    with services.db.transaction() as s:
        assert notify.deliver(s, down, contact_book) == (0, 1)
    up = notify.Mailer("127.0.0.1", smtp[0], "cert@x")
    with services.db.transaction() as s:
        assert notify.deliver(s, up, contact_book) == (1, 0)
    assert len(smtp[1].messages) == 1


def test_sla_breaches_are_found_recorded_and_shown_in_the_queue(
    client: TestClient, services: Services
) -> None:
    h = world(services)
    with services.db.transaction() as s:
        Registry.set_contacts(s, "ent-a", [{"email": "so@a.gob.bo"}], "", "", "t")
    seen(client, h, "evil.example")
    inc = incidents(client, h["analyst"])[0]
    client.post(f"/api/v1/incidents/{inc['id']}/notifications", json={}, headers=h["analyst"])
    now = utcnow()
    with services.db.transaction() as s:
        assert sla.find_breaches(s, now) == []
        # P3: 24 h to acknowledge; the entity has 72 h to answer.
        late = sla.find_breaches(s, now + timedelta(hours=25))
        assert [(b.clock, b.entity_id) for b in late] == [("acknowledge", "")]
        assert sla.find_breaches(s, now + timedelta(hours=26)) == []  # recorded once
        later = sla.find_breaches(s, now + timedelta(days=8))
        assert sorted((b.clock, b.entity_id) for b in later) == [
            ("contain", ""),
            ("entity_reply", "ent-a"),
        ]
    breached = incidents(client, h["analyst"], breached="true")
    assert [i["id"] for i in breached] == [inc["id"]]
    assert breached[0]["sla_breaches"] == ["acknowledge", "entity_reply:ent-a", "contain"]
    assert incidents(client, h["analyst"], breached="false") == []
    # The entity sees its own reply clock ran out, not the CERT's clocks.
    assert incidents(client, h["a"])[0]["sla_breaches"] == ["entity_reply:ent-a"]
    timeline = client.get(f"/api/v1/incidents/{inc['id']}", headers=h["analyst"]).json()["timeline"]
    assert sum(1 for e in timeline if e["kind"] == "breach") == 3


def _shared_incident(client: TestClient, h: dict[str, dict[str, str]]) -> dict[str, Any]:
    """One incident naming A and B, with notes at each TLP and a reply from each."""
    seen(client, h, "evil.example")
    seen(client, h, "evil.example", src="10.2.0.9")
    found = incidents(client, h["analyst"])
    a = next(i for i in found if i["entities"][0]["id"] == "ent-a")
    b = next(i for i in found if i["entities"][0]["id"] == "ent-b")
    r = client.post(
        f"/api/v1/incidents/{a['id']}/merge",
        json={"version": a["version"], "incident_ids": [b["id"]]},
        headers=h["analyst"],
    )
    assert r.status_code == 200, r.text
    base = f"/api/v1/incidents/{a['id']}"
    for tlp in ("clear", "green", "amber", "amber+strict", "red"):
        body = {"body": f"nota {tlp}", "tlp": tlp}
        assert client.post(f"{base}/notes", json=body, headers=h["analyst"]).status_code == 201
    for who in ("a", "b"):
        r = client.post(f"{base}/replies", json={"body": f"respuesta {who}"}, headers=h[who])
        assert r.status_code == 201
    merged: dict[str, Any] = client.get(base, headers=h["analyst"]).json()
    return merged


def test_entity_isolation_and_tlp(client: TestClient, services: Services) -> None:
    h = world(services)
    inc = _shared_incident(client, h)
    base = f"/api/v1/incidents/{inc['id']}"
    seen(client, h, "third.example", src="10.1.4.4")  # an incident that names A alone
    only_a = next(
        i
        for i in incidents(client, h["analyst"])
        if i["id"] != inc["id"] and i["status"] != "closed"
    )
    a_view = client.get(base, headers=h["a"]).json()
    notes = [e["body"] for e in a_view["timeline"] if e["kind"] == "note"]
    assert notes == [
        "nota clear",
        "nota green",
        "nota amber",
    ]  # no AMBER+STRICT (B is named), no RED
    replies = [e["body"] for e in a_view["timeline"] if e["kind"] == "reply"]
    assert replies == ["respuesta a"]  # never B's
    assert [e["id"] for e in a_view["entities"]] == ["ent-a"]
    assert {a["entity"] for a in a_view["alerts"]} == {"ent-a"}
    assert a_view["tasks"] == [] and a_view["transitions"] == []
    staff_view = client.get(base, headers=h["auditor"]).json()
    assert len([e for e in staff_view["timeline"] if e["kind"] == "note"]) == 5
    assert len(staff_view["alerts"]) == 2
    # B cannot read or answer an incident that names only A; the answer is the same
    # as for an incident that does not exist.
    other = f"/api/v1/incidents/{only_a['id']}"
    for method, path, kw in [
        ("GET", other, {}),
        ("POST", f"{other}/acknowledgement", {}),
        ("POST", f"{other}/replies", {"json": {"body": "x"}}),
        ("GET", "/api/v1/incidents/424242", {}),
    ]:
        r = client.request(method, path, headers=h["b"], **kw)
        assert r.status_code == 404, (method, path, r.status_code)
    assert only_a["id"] not in [i["id"] for i in incidents(client, h["b"])]
    assert (
        client.get("/api/v1/incidents", params={"entity": "ent-a"}, headers=h["b"]).status_code
        == 403
    )
    for path in (f"{other}/export/misp", f"{other}/export/stix", "/api/v1/incidents/metrics"):
        assert client.get(path, headers=h["b"]).status_code == 403
    # B's failed attempt changed nothing of A's.
    assert [e["kind"] for e in client.get(other, headers=h["analyst"]).json()["timeline"]].count(
        "reply"
    ) == 0
    # An AMBER+STRICT note on an incident that names A alone reaches A.
    client.post(
        f"{other}/notes", json={"body": "solo A", "tlp": "amber+strict"}, headers=h["analyst"]
    )
    own = client.get(other, headers=h["a"]).json()
    assert "solo A" in [e["body"] for e in own["timeline"]]
    # A TLP:RED incident: A learns it exists and its state, not what it is about.
    client.patch(
        other,
        json={"version": own["version"], "tlp": "red", "summary": "secreto"},
        headers=h["analyst"],
    )
    red = client.get(other, headers=h["a"]).json()
    assert (
        red["redacted"]
        and red["summary"] == ""
        and red["alerts"] == []
        and red["observables"] == []
    )
    assert "solo A" not in [e["body"] for e in red["timeline"]]


def test_metrics_by_entity_priority_and_class_with_csv(
    client: TestClient, services: Services
) -> None:
    h = world(services)
    seen(client, h, "evil.example")
    seen(client, h, "evil.example", src="10.2.0.9")
    found = incidents(client, h["analyst"])
    for inc in found:
        cur = move(client, h["analyst"], inc, "triaged").json()
        if inc["entities"][0]["id"] == "ent-a":
            cur = move(client, h["analyst"], cur, "in_progress").json()
            move(client, h["analyst"], cur, "resolved")
    m = client.get("/api/v1/incidents/metrics", headers=h["auditor"])
    assert m.status_code == 200, m.text
    body = m.json()
    assert body["overall"]["incidents"] == 2
    assert body["by_entity"]["ent-a"]["resolve_median_s"] is not None
    assert body["by_entity"]["ent-b"]["resolve_median_s"] is None
    assert body["by_priority"]["P3"]["incidents"] == 2
    # Traffic from 2023, incidents opened now: time to detect is that gap.
    assert body["overall"]["detect_median_s"] > 365 * 24 * 3600
    r = client.get("/api/v1/incidents/metrics", params={"format": "csv"}, headers=h["analyst"])
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted(row["entities"] for row in rows) == ["ent-a", "ent-b"]
    assert all(row["acknowledge_s"] for row in rows)
    assert [bool(row["resolve_s"]) for row in sorted(rows, key=lambda x: x["entities"])] == [
        True,
        False,
    ]


def test_exports_pass_pymisp_and_stix_validation(client: TestClient, services: Services) -> None:
    import jsonschema
    import pymisp
    from pymisp import MISPEvent
    from stix2validator import ValidationOptions, validate_string

    h = world(services)
    seen(client, h, "evil.example")
    seen(client, h, "203.0.113.66", src="10.1.1.5")  # an address indicator too
    client.post(
        "/api/v1/observations",
        json={
            "batch_id": "batch-ip-0001",
            "observations": [
                __import__("tests.factories").factories.observation(dst="203.0.113.66")
            ],
        },
        headers=h["sensor"],
    )
    inc = incidents(client, h["analyst"])[0]
    client.patch(
        f"/api/v1/incidents/{inc['id']}",
        json={"version": inc["version"], "rsit_class": "malicious-code", "rsit_type": "c2-server"},
        headers=h["analyst"],
    )
    r = client.get(f"/api/v1/incidents/{inc['id']}/export/misp", headers=h["analyst"])
    assert r.status_code == 200
    # pymisp's own event schema, the lax one it picks by default (its load() no longer
    # applies it), then pymisp's loader,
    # which refuses attribute types outside MISP's describeTypes.
    schema = Path(pymisp.__file__).parent / "data" / "schema-lax.json"  # pymisp's default
    jsonschema.validate(r.json(), json.loads(schema.read_text()))
    event = MISPEvent()
    event.load(r.json())
    assert {t.name for t in event.tags} >= {
        "tlp:amber",
        "PAP:AMBER",
        'rsit:malicious-code="c2-server"',
    }
    values = {(a.type, a.value) for a in event.attributes}
    assert ("domain", "evil.example") in values and ("ip-dst", "203.0.113.66") in values
    assert event.objects and event.objects[0].name == "network-connection"
    again = client.get(f"/api/v1/incidents/{inc['id']}/export/misp", headers=h["analyst"]).json()
    assert again["Event"]["uuid"] == r.json()["Event"]["uuid"]  # stable across exports
    s = client.get(f"/api/v1/incidents/{inc['id']}/export/stix", headers=h["analyst"])
    assert s.headers["content-type"].startswith("application/stix+json")
    result = validate_string(s.text, ValidationOptions(strict=False))
    assert result.is_valid, [str(e) for e in result.errors]
    bundle = s.json()
    types = [o["type"] for o in bundle["objects"]]
    assert types.count("incident") == 1 and types.count("indicator") == 2
    patterns = {o["pattern"] for o in bundle["objects"] if o["type"] == "indicator"}
    assert patterns == {
        "[domain-name:value = 'evil.example']",
        "[ipv4-addr:value = '203.0.113.66']",
    }
    marking = next(o for o in bundle["objects"] if o["type"] == "marking-definition")
    assert marking["name"] == "TLP:AMBER"


def test_an_entity_without_contacts_is_not_notified_silently(
    client: TestClient, services: Services
) -> None:
    h = world(services)
    seen(client, h, "evil.example")
    inc = incidents(client, h["analyst"])[0]
    r = client.post(f"/api/v1/incidents/{inc['id']}/notifications", json={}, headers=h["analyst"])
    assert r.json() == {"queued": 0}
    timeline = client.get(f"/api/v1/incidents/{inc['id']}", headers=h["analyst"]).json()["timeline"]
    assert timeline[-1]["kind"] == "notification" and timeline[-1]["body"] == "sin contacto"
    with services.db.transaction() as s, pytest.raises(Exception, match="secret"):
        Registry.set_contacts(s, "ent-a", [], "https://x.example/hook", "short", "t")
    assert make_token  # the helper module's tokens are used above
