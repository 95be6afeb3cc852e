"""The incident page (issue 15) through the app, as a browser or a script sees it:
owner, SLA clocks as text, related incidents, exports, the actions a state allows,
confirmations that say who gets what, messages after saves, refusals beside their
field with the input kept; and the page asked for kept across the login."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.routers.console import safe_next
from certification.registry import Registry
from core.audit import AuditRecord
from core.tokens import Role
from tests.conftest import make_token
from tests.console import console_login, csrf_of
from tests.incident_helpers import T0, seen, world
from vigia.wiring import Services


@pytest.fixture
def app_client(services: Services) -> TestClient:
    return TestClient(create_app(services))


def _alert_ids(client: TestClient, who: dict[str, str], value: str) -> list[str]:
    r = client.get("/api/v1/alerts", params={"limit": 100}, headers=who)
    assert r.status_code == 200, r.text
    return [
        a["event"]["id"]
        for a in r.json()["alerts"]
        if a["threat"]["enrichments"][0]["matched"]["atomic"] == value
        and a["vigia"].get("incident") is None
    ]


def _promote(client: TestClient, who: dict[str, str], value: str) -> dict[str, Any]:
    ids = _alert_ids(client, who, value)
    r = client.post("/api/v1/incidents", json={"alert_ids": ids}, headers=who)
    assert r.status_code == 201, r.text
    inc: dict[str, Any] = r.json()
    return inc


@pytest.fixture
def w(services: Services, app_client: TestClient) -> dict[str, Any]:
    """Entity A saw weak.example (too weak to open an incident by itself): promoted."""
    h = world(services)
    with services.db.transaction() as s:
        Registry.set_contacts(
            s, "ent-a", [{"name": "Oficial", "email": "soc@a.gob.bo"}], "", "", "t"
        )
    seen(app_client, h, "weak.example")
    inc = _promote(app_client, h["analyst"], "weak.example")
    return {"h": h, "inc": inc, "url": f"/console/incidentes/{inc['id']}"}


def _form(html: str, form_id: str) -> str:
    found = re.search(rf'<(form|details)[^>]*id="{form_id}".*?</\1>', html, re.S)
    assert found, f"no #{form_id} on the page"
    return found.group(0)


def test_assign_to_an_analyst_with_a_message_and_the_timeline(
    app_client: TestClient, w: dict[str, Any], services: Services
) -> None:
    make_token(services, Role.ANALYST, name="ana")
    page = app_client.get(w["url"], headers=w["h"]["analyst"]).text
    assert "Sin asignar" in page
    options = _form(page, "asignar")
    assert 'value="analyst:ana"' in options and "ana (analista)" in options
    r = app_client.post(
        f"{w['url']}/asignar",
        data={"version": w["inc"]["version"], "owner": "analyst:ana"},
        headers=w["h"]["analyst"],
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("?hecho=asignado")
    after = app_client.get(r.headers["location"], headers=w["h"]["analyst"]).text
    assert 'id="mensaje">✓ Responsable guardado.' in after
    assert re.search(r'id="responsable">\s*ana\s*<', after)
    assert "Sin asignar → ana" in re.sub(r"\s+", " ", after)
    with services.db.transaction() as s:
        actions = s.execute(select(AuditRecord.action)).scalars().all()
    assert "incident.owner" in actions
    # Someone who is not one of the CERT's analysts is refused beside the field.
    version = app_client.get(f"/api/v1/incidents/{w['inc']['id']}", headers=w["h"]["analyst"])
    bad = app_client.post(
        f"{w['url']}/asignar",
        data={"version": version.json()["version"], "owner": "entity:oficial-a"},
        headers=w["h"]["analyst"],
    )
    assert bad.status_code == 422
    assert 'id="error-assign-owner">«entity:oficial-a» no es una persona analista' in bad.text


def test_sla_clocks_are_text_with_time_left_and_overrun(
    app_client: TestClient, w: dict[str, Any]
) -> None:
    page = app_client.get(w["url"], headers=w["h"]["analyst"]).text
    table = re.search(r'<table id="plazos">.*?</table>', page, re.S)
    assert table, "no SLA table"
    text = re.sub(r"<[^>]+>|\s+", " ", table.group(0))
    for clock in ("acuse", "contención", "resolución"):
        assert clock in text  # every CERT clock, by name
    assert re.search(r"(quedan|vencido hace) \d+ (d|h|min)", text), text  # not colour alone


def test_related_incidents_include_a_closed_one_on_the_same_indicator(
    app_client: TestClient, w: dict[str, Any], services: Services
) -> None:
    h, first = w["h"], w["inc"]
    closed = app_client.post(
        f"{w['url']}/transicion",
        data={"version": first["version"], "to": "closed", "resolution": "false_positive"},
        headers=h["analyst"],
        follow_redirects=False,
    )
    assert closed.status_code == 303 and closed.headers["location"].endswith("?hecho=cerrado")
    seen(app_client, h, "weak.example", ts=T0 + 7200)
    second = _promote(app_client, h["analyst"], "weak.example")
    page = app_client.get(f"/console/incidentes/{second['id']}", headers=h["analyst"]).text
    related = re.search(r'<ul id="relacionados">.*?</ul>', page, re.S)
    assert related, "no related incidents"
    text = re.sub(r"\s+", " ", related.group(0))
    assert f'href="/console/incidentes/{first["id"]}"' in text
    assert "Cerrado (Falso positivo)" in text and "mismo indicador" in text
    assert "misma entidad" in text
    # The closed one offers no notify, edit or add task; only reopening.
    old = app_client.get(w["url"], headers=h["analyst"]).text
    for gone in ('id="notificar"', 'id="edicion"', 'id="nueva-tarea"', 'id="asignar"'):
        assert gone not in old
    moves = _form(old, "transicion")
    assert re.findall(r'<option value="(\w+)"', moves) == ["in_progress"]
    assert 'id="cerrar"' not in old


def test_notify_and_close_confirm_what_will_happen(
    app_client: TestClient, w: dict[str, Any]
) -> None:
    h = w["h"]
    page = app_client.get(w["url"], headers=h["analyst"]).text
    notify = re.sub(r"\s+", " ", _form(page, "notificar"))
    assert "Se enviará un aviso de este incidente a:" in notify
    assert "Entidad A (ent-a): correo a soc@a.gob.bo" in notify
    assert "Confirmar y enviar" in notify
    close = re.sub(r"\s+", " ", _form(page, "cerrar"))
    assert "las entidades no reciben ningún aviso (ent-a)" in close
    assert "avistamiento de falso positivo por cada una de sus 1 alertas" in close
    # From "new" only the resolutions that need no work are offered.
    assert re.findall(r'<option value="(\w+)"', close) == ["false_positive", "duplicate"]
    # Triage notifies by itself: the timeline says it was automatic.
    r = app_client.post(
        f"{w['url']}/transicion",
        data={"version": w["inc"]["version"], "to": "triaged"},
        headers=h["analyst"],
    )
    assert r.status_code == 200 and "Estado cambiado." in r.text
    timeline = re.sub(r"<[^>]+>|\s+", " ", _form_ol(r.text))
    assert "Notificación" in timeline and "automática, al clasificar" in timeline
    again = re.sub(r"\s+", " ", _form(r.text, "notificar"))
    assert "ya notificada el" in again and "recibirá un segundo aviso" in again


def _form_ol(html: str) -> str:
    found = re.search(r'<ol class="cronologia" id="cronologia">.*?</ol>', html, re.S)
    assert found
    return found.group(0)


def test_a_refusal_shows_beside_its_field_and_keeps_the_input(
    app_client: TestClient, w: dict[str, Any]
) -> None:
    h = w["h"]
    # Closing without a resolution: the reason beside the resolution, in Spanish.
    r = app_client.post(
        f"{w['url']}/transicion",
        data={"version": w["inc"]["version"], "to": "closed", "comment": "sin más"},
        headers=h["analyst"],
    )
    assert r.status_code == 422
    assert 'id="error-close-resolution">para cerrar hace falta una resolución' in r.text
    assert '<details id="cerrar" open>' in r.text and 'value="sin más"' in r.text
    # A stale edit: the Spanish message, the typed title and summary kept.
    ok = app_client.post(
        f"{w['url']}/editar",
        data={"version": w["inc"]["version"], "title": "Primera versión", "ncciss": 1},
        headers=h["analyst"],
    )
    assert ok.status_code == 200 and "Cambios guardados." in ok.text
    stale = app_client.post(
        f"{w['url']}/editar",
        data={
            "version": w["inc"]["version"],
            "title": "Mi título nuevo",
            "summary": "Lo que escribí con cuidado",
            "ncciss": 1,
        },
        headers=h["analyst"],
    )
    assert stale.status_code == 409
    text = htmllib.unescape(stale.text)
    assert "Otra persona cambió este incidente mientras usted lo editaba" in text
    edit = _form(text, "edicion")
    assert 'value="Mi título nuevo"' in edit and "Lo que escribí con cuidado" in edit
    assert '<details id="edicion" open>' in text
    # Saved again from the kept form (it carries the current version): it goes through.
    current = re.search(r'name="version" value="(\d+)"', edit)
    assert current is not None
    again = app_client.post(
        f"{w['url']}/editar",
        data={"version": current.group(1), "title": "Mi título nuevo", "ncciss": 1},
        headers=h["analyst"],
    )
    assert again.status_code == 200 and "Mi título nuevo" in again.text


def test_values_pivot_and_exports_are_offered_by_role(
    app_client: TestClient, w: dict[str, Any]
) -> None:
    h, iid = w["h"], w["inc"]["id"]
    page = app_client.get(w["url"], headers=h["analyst"]).text
    assert 'href="/console/buscar?q=weak.example"' in page
    assert 'href="/console/buscar?q=10.1.1.5"' in page
    for href in (f"/api/v1/incidents/{iid}/export/misp", f"/api/v1/incidents/{iid}/export/stix"):
        assert f'href="{href}"' in page
        assert app_client.get(href, headers=h["analyst"]).status_code == 200
    assert f'href="/api/v1/incidents/{iid}/export/pdf?entity=ent-a"' in page
    pdf = app_client.get(f"/api/v1/incidents/{iid}/export/pdf?entity=ent-a", headers=h["analyst"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    assert (
        app_client.get(
            f"/api/v1/incidents/{iid}/export/pdf?entity=ent-b", headers=h["analyst"]
        ).status_code
        == 404
    )  # not an entity of this incident
    # The entity: its own report only, no MISP/STIX buttons, no owner.
    own = app_client.get(w["url"], headers=h["a"]).text
    assert f'href="/api/v1/incidents/{iid}/export/pdf"' in own
    assert "export/misp" not in own and 'id="responsable"' not in own
    mine = app_client.get(f"/api/v1/incidents/{iid}/export/pdf", headers=h["a"])
    assert mine.status_code == 200 and mine.content.startswith(b"%PDF")
    other = app_client.get(f"/api/v1/incidents/{iid}/export/pdf", headers=h["b"])
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/console/incidentes/7", "/console/incidentes/7"),
        ("/console/alertas?q=x&entidad=ent-a", "/console/alertas?q=x&entidad=ent-a"),
        ("https://evil.example/console/incidentes/7", ""),
        ("//evil.example/console/", ""),
        ("/\\evil.example", ""),
        ("/console/\\\\evil.example", ""),
        ("javascript:alert(1)", ""),
        ("/api/v1/incidents", ""),
        ("/console/login", ""),
    ],
)
def test_only_a_path_of_the_console_is_kept_across_the_login(asked: str, kept: str) -> None:
    assert safe_next(asked) == kept


def test_login_from_a_deep_link_lands_on_it_and_never_elsewhere(
    app_client: TestClient, services: Services
) -> None:
    token = make_token(services, Role.ANALYST)
    app_client.cookies.clear()
    asked = app_client.get("/console/incidentes/7")
    assert asked.status_code == 401
    assert '<input type="hidden" name="next" value="/console/incidentes/7">' in asked.text
    r = app_client.post(
        "/console/login",
        data={"token": token, "csrf": csrf_of(asked.text), "next": "/console/incidentes/7"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/incidentes/7"
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        app_client.cookies.clear()
        form = app_client.get("/console/login", params={"next": evil})
        assert 'name="next"' not in form.text
        r = app_client.post(
            "/console/login",
            data={"token": token, "csrf": csrf_of(form.text), "next": evil},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/console/alertas", evil
    app_client.cookies.clear()
    plain = console_login(app_client, token)
    assert plain.headers["location"] == "/console/alertas"


def test_the_metrics_csv_in_spanish_for_people_and_codes_for_scripts(
    app_client: TestClient, w: dict[str, Any]
) -> None:
    url = "/api/v1/incidents/metrics"
    es = app_client.get(url, params={"format": "csv", "lang": "es"}, headers=w["h"]["analyst"])
    assert es.status_code == 200
    head, row = es.text.splitlines()[:2]
    assert head.startswith("Incidente,Entidades,Prioridad,Clase RSIT,Estado,Abierto")
    assert ",Nuevo," in row and ",new," not in row
    codes = app_client.get(url, params={"format": "csv"}, headers=w["h"]["analyst"])
    assert codes.text.startswith("incident,entities,priority,rsit_class,status")
    assert ",new," in codes.text.splitlines()[1]
    page = app_client.get("/console/incidentes", headers=w["h"]["analyst"]).text
    assert 'href="/api/v1/incidents/metrics?format=csv&amp;lang=es"' in page
