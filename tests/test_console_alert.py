"""The alert page and the pivot page (issue 15), through the app as a browser or a
script sees them: what the page shows, the actions and their messages, who sees what."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.tokens import Role
from correlator.rows import AlertRow
from correlator.store import AlertStore
from tests.conftest import bearer, make_token
from tests.incident_helpers import T0, seen, world
from vigia.wiring import Services


@pytest.fixture
def app_client(services: Services) -> TestClient:
    return TestClient(create_app(services))


def _alerts(client: TestClient, who: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/v1/alerts", params=params, headers=who)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["alerts"]
    return found


@pytest.fixture
def w(services: Services, app_client: TestClient) -> dict[str, Any]:
    """Entity A saw weak.example twice (one alert, new); entity B saw 203.0.113.66."""
    h = world(services)
    seen(app_client, h, "weak.example")
    seen(app_client, h, "weak.example", ts=T0 + 30)
    from tests.factories import observation

    doc = observation(src="10.2.0.7", dst="203.0.113.66", ts=T0 + 60)
    r = app_client.post(
        "/api/v1/observations",
        json={"batch_id": "batch-b-000001", "observations": [doc]},
        headers=h["sensor"],
    )
    assert r.status_code == 200, r.text
    alerts = _alerts(app_client, h["analyst"])
    by_value = {a["threat"]["enrichments"][0]["matched"]["atomic"]: a for a in alerts}
    return {
        "h": h,
        "admin": bearer(make_token(services, Role.ADMIN)),
        "a_alert": by_value["weak.example"],
        "b_alert": by_value["203.0.113.66"],
    }


def test_the_alert_page_lays_out_what_where_and_which_indicators(
    app_client: TestClient, w: dict[str, Any]
) -> None:
    a = w["a_alert"]
    r = app_client.get(f"/console/alertas/{a['event']['id']}", headers=w["h"]["analyst"])
    assert r.status_code == 200
    html = r.text
    assert "<h1>Alerta: weak.example</h1>" in html
    assert "Community ID del flujo" in html and "1:test" in html
    assert "sensor-1" in html and "Entidad A" in html
    # The indicator with its source and TLP, and every value a pivot link.
    assert "<td>feed</td><td>Baja</td>" in html  # confidence 20: ECS "Low", in Spanish
    tlp = a["threat"]["enrichments"][0]["indicator"]["marking"]["tlp"]
    assert f">TLP:{tlp}</span>" in html
    assert 'href="/console/buscar?q=weak.example"' in html
    assert 'href="/console/buscar?q=10.1.1.5"' in html
    assert '<details id="ecs">' in html and a["event"]["id"] in html
    # Each action says what it sends to MISP; each form carries the CSRF field.
    for form in ("acusar", "descartar", "promover"):
        assert f'id="{form}"' in html
    assert "avistamiento (sighting)" in html and "falso positivo" in html


def test_acknowledge_shows_a_spanish_message_and_queues_a_sighting(
    app_client: TestClient, w: dict[str, Any], services: Services
) -> None:
    from correlator.sightings import SightingRow

    eid = w["a_alert"]["event"]["id"]
    with services.db.transaction() as s:
        before = s.query(SightingRow).count()
    r = app_client.post(
        f"/console/alertas/{eid}/acusar", headers=w["h"]["analyst"], follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].endswith("?hecho=acusada")
    shown = app_client.get(r.headers["location"], headers=w["h"]["analyst"])
    assert "Alerta reconocida; el avistamiento para MISP quedó en cola." in shown.text
    assert 'id="acusar"' not in shown.text  # done: not offered again
    with services.db.transaction() as s:
        row = AlertStore.get(s, eid)
        assert row is not None and row.status == "acknowledged"
        assert s.query(SightingRow).count() == before + 1


def test_dismiss_needs_a_reason_from_the_list_and_says_why_in_spanish(
    app_client: TestClient, w: dict[str, Any], services: Services
) -> None:
    eid = w["a_alert"]["event"]["id"]
    url = f"/console/alertas/{eid}/descartar"
    bad = app_client.post(url, data={"reason": "porque sí"}, headers=w["h"]["analyst"])
    assert bad.status_code == 422
    assert "para descartar hace falta un motivo" in bad.text
    ok = app_client.post(url, data={"reason": "benign"}, headers=w["h"]["analyst"])
    assert ok.status_code == 200 and "Alerta descartada." in ok.text
    with services.db.transaction() as s:
        row = s.get(AlertRow, eid)
        assert row is not None and row.status == "dismissed"


def test_promote_opens_a_new_incident_with_the_alert(
    app_client: TestClient, w: dict[str, Any]
) -> None:
    eid = w["a_alert"]["event"]["id"]
    r = app_client.post(
        f"/console/alertas/{eid}/promover", headers=w["h"]["analyst"], follow_redirects=False
    )
    assert r.status_code == 303
    inc_url = r.headers["location"]
    assert re.fullmatch(r"/console/incidentes/\d+", inc_url)
    page = app_client.get(inc_url, headers=w["h"]["analyst"])
    assert page.status_code == 200 and "weak.example" in page.text
    again = app_client.get(f"/console/alertas/{eid}", headers=w["h"]["analyst"])
    assert f'href="{inc_url}"' in again.text and 'id="promover"' not in again.text


def test_an_entity_sees_its_own_alert_without_actions_and_not_another(
    app_client: TestClient, w: dict[str, Any]
) -> None:
    a, b = w["a_alert"]["event"]["id"], w["b_alert"]["event"]["id"]
    own = app_client.get(f"/console/alertas/{a}", headers=w["h"]["a"])
    assert own.status_code == 200 and 'id="acciones"' not in own.text
    other = app_client.get(f"/console/alertas/{b}", headers=w["h"]["a"])
    assert other.status_code == 404
    missing = app_client.get(f"/console/alertas/{'0' * 32}", headers=w["h"]["analyst"])
    assert missing.status_code == 404
    assert (
        app_client.get("/console/alertas/no-es-un-id", headers=w["h"]["analyst"]).status_code == 422
    )
    refused = app_client.post(f"/console/alertas/{a}/acusar", headers=w["h"]["a"])
    assert refused.status_code == 403


def test_the_pivot_lists_alerts_incidents_and_observations_by_role(
    app_client: TestClient, w: dict[str, Any]
) -> None:
    an = app_client.get("/console/buscar", params={"q": "weak.example"}, headers=w["h"]["analyst"])
    assert an.status_code == 200
    assert f'href="/console/alertas/{w["a_alert"]["event"]["id"]}"' in an.text
    assert 'id="observaciones"' in an.text
    # Two stored observations, 30 s apart: first and last seen.
    assert re.search(r'id="primera">2023-11-14T22:13:20', an.text), an.text
    assert re.search(r'id="ultima">2023-11-14T22:13:50', an.text)
    # Whole values only: a part of a value finds nothing.
    part = app_client.get("/console/buscar", params={"q": "weak.exam"}, headers=w["h"]["analyst"])
    assert "Ninguna alerta con este valor." in part.text
    # An entity: its own alerts only, no stored observations, no one else's.
    mine = app_client.get("/console/buscar", params={"q": "weak.example"}, headers=w["h"]["a"])
    assert w["a_alert"]["event"]["id"] in mine.text and 'id="observaciones"' not in mine.text
    theirs = app_client.get("/console/buscar", params={"q": "203.0.113.66"}, headers=w["h"]["a"])
    assert w["b_alert"]["event"]["id"] not in theirs.text
    assert "Ninguna alerta con este valor." in theirs.text
    staff = app_client.get("/console/buscar", params={"q": "203.0.113.66"}, headers=w["admin"])
    assert w["b_alert"]["event"]["id"] in staff.text


def test_queue_rows_open_their_alert_page_and_values_pivot(
    app_client: TestClient, w: dict[str, Any]
) -> None:
    q = app_client.get("/console/alertas", headers=w["h"]["analyst"]).text
    assert f'href="/console/alertas/{w["a_alert"]["event"]["id"]}"' in q
    assert 'href="/console/buscar?q=203.0.113.66"' in q


def test_a_yara_hit_shows_its_rule_and_hostile_values_stay_text(
    app_client: TestClient, w: dict[str, Any], services: Services
) -> None:
    from correlator.alerts import Match, YaraHit, build_alert
    from sensors.observation import Observation

    o = Observation(
        timestamp=T0,
        observer="sensor-1",
        src_ip="10.1.1.5",
        dst_ip="198.51.100.7",
        src_port=40001,
        dst_port=80,
        transport="tcp",
        community_id="1:yara",
    )
    hit = YaraHit(
        "Evil_Dropper",
        "pack-2026.1",
        "default",
        ("dropper", "win"),
        "Dropper de <b>prueba</b>",
        "https://example.org/informe",
        "CERT",
    )
    sha = "ab" * 32
    doc = build_alert(Match(o, "file.hash.sha256", sha, yara=hit), "f" * 32, 1, T0, T0, None)
    with services.db.transaction() as s:
        AlertStore.upsert(s, doc)
    html = app_client.get(f"/console/alertas/{'f' * 32}", headers=w["h"]["analyst"]).text
    rule = html.split('id="regla"')[1].split("</dl>")[0]
    assert "Evil_Dropper" in rule and "pack-2026.1" in rule
    assert "Dropper de &lt;b&gt;prueba&lt;/b&gt;" in rule  # the rule's meta, as text
    assert "https://example.org/informe" in rule and "dropper, win" in rule
    assert f'href="/console/buscar?q={sha}"' in html
    # The pivot on the hash and on the rule's name both find it; LIKE's wildcards do not.
    for value in (sha, "Evil_Dropper"):
        found = app_client.get("/console/buscar", params={"q": value}, headers=w["h"]["analyst"])
        assert f'href="/console/alertas/{"f" * 32}"' in found.text, value
    for value in ("%", "_", "Evil%"):
        none = app_client.get("/console/buscar", params={"q": value}, headers=w["h"]["analyst"])
        assert "Ninguna alerta con este valor." in none.text, value
    hostile = app_client.get(
        "/console/buscar", params={"q": "<script>x</script>"}, headers=w["h"]["analyst"]
    )
    assert "<script>x</script>" not in hostile.text and "&lt;script&gt;" in hostile.text
