"""Routes the README's API table lists whose behaviour (beyond who may call them) had no test."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from core import audit
from core.tokens import Role
from tests.conftest import bearer, make_token
from vigia.wiring import Services


def test_entity_and_audit_verify_routes(sqlite_services: Services) -> None:
    client = TestClient(create_app(sqlite_services))
    auditor = bearer(make_token(sqlite_services, Role.AUDITOR))
    admin = bearer(make_token(sqlite_services, Role.ADMIN))
    made = client.post(
        "/api/v1/entities",
        json={"id": "min-a", "name": "Ministerio A", "level": "central"},
        headers=admin,
    )
    assert made.status_code in (200, 201), made.text
    assert [e["id"] for e in client.get("/api/v1/entities", headers=auditor).json()] == ["min-a"]
    intact = client.get("/api/v1/audit/verify", headers=auditor).json()
    assert intact["ok"] is True and intact["records"] >= 3 and intact["problem"] is None
    with sqlite_services.db.transaction(write=False) as s:
        head = str(audit.anchor(s))
    held = client.get("/api/v1/audit/verify", params={"anchor": head}, headers=auditor).json()
    assert held["ok"] is True
    other = "1:" + "0" * 64  # a head this chain never had
    foreign = client.get("/api/v1/audit/verify", params={"anchor": other}, headers=auditor)
    assert foreign.json()["ok"] is False and "anchor" in foreign.json()["problem"]
    bad = client.get("/api/v1/audit/verify", params={"anchor": "yesterday"}, headers=auditor)
    assert bad.status_code == 422 and "SEQ:DIGEST" in bad.text
    with sqlite_services.db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET detail = '{}' WHERE seq = 1")
    broken = client.get("/api/v1/audit/verify", headers=auditor).json()
    assert broken["ok"] is False and "record 1" in broken["problem"]


def test_a_refused_yara_pack_shows_in_metrics(sqlite_services: Services) -> None:
    from vigia import scheduler

    client = TestClient(create_app(sqlite_services))
    auditor = bearer(make_token(sqlite_services, Role.AUDITOR))

    def gauges() -> dict[str, float]:
        text = client.get("/metrics", headers=auditor).text
        pairs = (line.split(" ") for line in text.splitlines() if line.startswith("vigia_yara_"))
        return {name: float(value) for name, value in pairs}

    scheduler.rules_job(sqlite_services)
    running = gauges()
    assert running["vigia_yara_pack_error"] == 0 and running["vigia_yara_rules"] > 0
    folder = sqlite_services.settings.data_dir / "yara"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broken.yar").write_text("rule bad { condition: nope }\n")
    scheduler.rules_job(sqlite_services)
    refused = gauges()
    assert refused == {**running, "vigia_yara_pack_error": 1.0}  # the running pack stays
