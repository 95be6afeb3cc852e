"""YARA in the running centre: files scanned against the live pack, hashes against
the indicators, and the pack hot-swapped when its files change — a pack that does
not compile is refused whole while the running one stays active."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.tokens import Role
from correlator.store import IndicatorStore
from rules.indicator import Indicator
from tests.conftest import bearer, make_token
from vigia import scheduler
from vigia.wiring import Services

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SAMPLE = b"MZ\x90\x00 vigia test sample: beacon to c2-panel.example /gate.php\n"
RULE = """rule vigia_test_beacon {
  strings: $a = "c2-panel.example" $b = "/gate.php"
  condition: all of them
}
"""


@pytest.fixture
def h(services: Services) -> dict[str, dict[str, str]]:
    from certification.registry import Registry

    with services.db.transaction() as s:
        Registry.add(s, "ent-a", "Entidad A", "central", ["10.1.0.0/16"], [], "test")
    return {
        "admin": bearer(make_token(services, Role.ADMIN)),
        "analyst": bearer(make_token(services, Role.ANALYST)),
        "sensor": bearer(make_token(services, Role.SENSOR, name="sensor-1")),
    }


def _send(client: TestClient, who: dict[str, str], data: bytes, **form: Any) -> Any:
    fields = {"src_ip": "203.0.113.80", "dst_ip": "10.1.2.3", "protocol": "http", **form}
    return client.post(
        "/api/v1/files",
        data=fields,
        files={"file": (form.pop("name", "sample.bin"), data, "application/octet-stream")},
        headers=who,
    )


def test_a_file_is_scanned_and_alerts_like_an_observation(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    r = _send(client, h["sensor"], EICAR, observer="sensor-1", name="eicar.com")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["yara"] == ["eicar_test_file"] and len(body["alerts"]) == 1
    alert = client.get(f"/api/v1/alerts/{body['alerts'][0]}", headers=h["analyst"]).json()
    enr = alert["threat"]["enrichments"][0]
    assert enr["matched"] == {
        "atomic": body["sha256"],
        "field": "file.hash.sha256",
        "type": "yara_match",
    }
    assert alert["rule"]["name"] == "eicar_test_file" and alert["organization"]["id"] == "ent-a"
    # The file's hash is an indicator too.
    import hashlib

    md5 = hashlib.md5(SAMPLE).hexdigest()
    with services.db.transaction() as s:
        IndicatorStore.save(s, [Indicator("md5", md5, "feed")])
    r = _send(client, h["analyst"], SAMPLE)
    assert r.json()["yara"] == [] and len(r.json()["alerts"]) == 1
    a = client.get(f"/api/v1/alerts/{r.json()['alerts'][0]}", headers=h["analyst"]).json()
    assert a["threat"]["enrichments"][0]["matched"]["field"] == "file.hash.md5"
    # Bad input: empty, too big for the limit, a sensor sending as another.
    assert _send(client, h["sensor"], b"").status_code == 422
    assert _send(client, h["sensor"], b"x", observer="sensor-2").status_code == 403
    assert _send(client, h["sensor"], b"x", src_ip="not-an-ip").status_code == 422


def test_the_pack_is_hot_swapped_and_a_broken_one_refused(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    state = client.get("/api/v1/rules", headers=h["analyst"]).json()
    assert "eicar_test_file" in state["rules"] and state["error"] is None
    first = state["pack"]
    assert _send(client, h["sensor"], SAMPLE).json()["yara"] == []
    folder = services.settings.data_dir / "yara"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "local.yar").write_text(RULE)
    scheduler.rules_job(services)  # what the scheduler runs every minute
    state = client.get("/api/v1/rules", headers=h["analyst"]).json()
    assert "vigia_test_beacon" in state["rules"] and state["pack"] != first
    assert _send(client, h["sensor"], SAMPLE).json()["yara"] == ["vigia_test_beacon"]
    # A broken file: refused whole, with file and line; the running pack still matches.
    (folder / "broken.yar").write_text(
        "rule ok { condition: true }\nrule bad { condition: nope }\n"
    )
    scheduler.rules_job(services)
    state = client.get("/api/v1/rules", headers=h["analyst"]).json()
    assert state["error"].startswith(f"{folder / 'broken.yar'}:2:")
    assert "vigia_test_beacon" in state["rules"]
    assert _send(client, h["sensor"], SAMPLE).json()["yara"] == ["vigia_test_beacon"]
    r = client.post("/api/v1/rules/reload", headers=h["admin"])
    assert r.status_code == 422 and "broken.yar:2:" in r.json()["detail"]
    assert "running pack stays active" in r.json()["detail"]
    # Fixed: the next run takes it.
    (folder / "broken.yar").unlink()
    os.utime(folder / "local.yar")
    scheduler.rules_job(services)
    state = client.get("/api/v1/rules", headers=h["analyst"]).json()
    assert state["error"] is None and state["swaps"] == 3
    assert client.post("/api/v1/rules/reload", headers=h["analyst"]).status_code == 403


def test_vigia_serve_refuses_a_rules_folder_that_does_not_compile(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "yara").mkdir()
    (tmp_path / "yara" / "x.yar").write_text("rule x { condition: nope }\n")
    env = {**os.environ, "VIGIA_DATA_DIR": str(tmp_path), "VIGIA_PORT": "1"}
    env.pop("VIGIA_DATABASE_URL", None)
    r = subprocess.run(
        [sys.executable, "-m", "vigia", "serve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2 and "x.yar:1:" in r.stderr and "Traceback" not in r.stderr
