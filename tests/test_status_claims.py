"""Differences from DESIGN.md that docs/status.md states and no other test pinned down."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from core import audit
from tests.conftest import corpus
from tests.incident_helpers import incidents, seen, world
from tests.test_scan import alerts_of, vigia
from vigia.wiring import Services

# The OASIS TLP 2.0 extension's published marking definitions (TLP 1.0's AMBER is f88d31f6-…).
TLP2 = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"


def test_an_https_url_indicator_matches_the_place_seen_over_http(tmp_path: Path) -> None:
    wikipedia = corpus("zeek-traces", "dns-http", "opt.basic", "pcap", "wikipedia.pcap")
    ind = tmp_path / "url.csv"
    ind.write_text("type,value\nurl,https://meta.wikimedia.org/images/wikimedia-button.png\n")
    alerts = alerts_of(vigia("scan", wikipedia, "-i", ind).stdout)
    assert [a["threat"]["enrichments"][0]["matched"] for a in alerts] == [
        {
            "atomic": "http://meta.wikimedia.org/images/wikimedia-button.png",
            "field": "url.original",
            "type": "indicator_match",
        }
    ]


def test_the_stix_export_marks_with_tlp_2_0(sqlite_services: Services) -> None:
    client = TestClient(create_app(sqlite_services))
    h = world(sqlite_services)
    seen(client, h, "evil.example")
    inc = incidents(client, h["analyst"])[0]
    bundle = client.get(f"/api/v1/incidents/{inc['id']}/export/stix", headers=h["analyst"]).json()
    markings = {o["id"]: o for o in bundle["objects"] if o["type"] == "marking-definition"}
    assert set(markings) <= set(TLP2.values())  # none of STIX's built-in TLP 1.0 ones
    assert all(m["extensions"][TLP2_EXTENSION]["tlp_2_0"] in TLP2 for m in markings.values())
    (incident,) = [o for o in bundle["objects"] if o["type"] == "incident"]
    assert incident["object_marking_refs"] == [TLP2["amber"]]
    assert markings[TLP2["amber"]]["name"] == "TLP:AMBER"
    refs = {r for o in bundle["objects"] for r in o.get("object_marking_refs", [])}
    assert refs <= set(markings)  # each marking used is in the bundle


def test_a_webhook_secret_never_enters_the_audit_log(sqlite_services: Services) -> None:
    client = TestClient(create_app(sqlite_services))
    h = world(sqlite_services)
    secret = "s3creto-del-webhook-0123456789"
    body = {"contacts": [], "webhook_url": "https://a.gob.bo/cert", "webhook_secret": secret}
    r = client.put("/api/v1/entities/ent-a/contacts", json=body, headers=h["a"])
    assert r.status_code == 200, r.text
    with sqlite_services.db.transaction(write=False) as s:
        rows = s.execute(select(audit.AuditRecord)).scalars().all()
        details = [json.dumps(row.detail) for row in rows]
        assert any(row.action.startswith("entity") for row in rows[-1:])  # the change is audited
    assert not any(secret in d for d in details)


def test_tls_1_3_gives_a_client_hello_and_no_certificate() -> None:
    from tests.test_extract_zeek import _observe_files

    pcap = corpus("suricata-verify", "tls__tls13-draft28") / "tls13_draft28.pcap"
    values = [o.values for o in _observe_files([pcap])]
    assert any("tls.client.ja3" in v for v in values)  # the handshake was read
    assert not any("tls.server.hash.sha1" in v for v in values)  # its certificate is encrypted
