"""The alert queue (issue 15) through the app, as a browser or a script sees it:
filters in the address, sorting, counts, pages, the poll's count, the actions on the
chosen alerts with their message and audit, and who sees and does what."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from core.audit import AuditRecord
from core.tokens import Role
from correlator.rows import AlertRow
from incidents import alert_queue
from tests.conftest import bearer, make_token
from tests.incident_helpers import world
from tests.queue_helpers import Spec, at, store
from vigia.wiring import Services


@pytest.fixture
def app_client(services: Services) -> TestClient:
    return TestClient(create_app(services))


@pytest.fixture
def q(services: Services) -> dict[str, Any]:
    """Twelve alerts: A's domains host0..host5 received each 10 minutes from 08:00
    (host0 of low severity), two of B's, a URL and an IP of A (the URL of high
    severity), a high-severity domain, and one TLP:RED of A."""
    h = world(services)
    specs = [Spec(i, received=at(10 * i), confidence=20 if i == 0 else 70) for i in range(6)]
    specs += [
        Spec(10, entity=("ent-b", "Entidad B"), received=at(15)),
        Spec(11, entity=("ent-b", "Entidad B"), sensor="sensor-2", received=at(25)),
        Spec(12, value="http://bad.example/x", kind="url", received=at(35)),
        Spec(13, value="198.51.100.77", kind="ip-dst", received=at(45)),
        Spec(14, value="strong.example", confidence=100, received=at(55)),
        Spec(15, value="secret.example", tlp="red", received=at(65)),
    ]
    with services.db.transaction() as s:
        ids = store(s, specs)
    return {"h": h, "admin": bearer(make_token(services, Role.ADMIN)), "ids": ids}


def _ids(html: str) -> list[str]:
    return re.findall(r'<tr class="sev-\w+" data-id="([0-9a-f]{32})"', html)


def _n(i: int) -> str:
    return f"{i:032x}"


def test_filters_in_the_address_find_exactly_the_expected_alerts(
    app_client: TestClient, q: dict[str, Any]
) -> None:
    an = q["h"]["analyst"]

    def shown(**params: str) -> list[str]:
        r = app_client.get("/console/alertas", params=params, headers=an)
        assert r.status_code == 200, r.text
        return _ids(r.text)

    # Newest received first by default.
    assert shown()[:4] == [_n(15), _n(14), _n(5), _n(13)]
    # Entity and received time: A's alerts received from 08:10 to before 08:40.
    got = shown(
        entidad="ent-a", recibida_desde="2026-11-30T08:10", recibida_hasta="2026-11-30T08:40"
    )
    assert got == [_n(12), _n(3), _n(2), _n(1)]
    # Seen on the network (the observation's time), kind, severity, sensor, free text.
    assert shown(vista_desde="2023-11-14T22:14:00", vista_hasta="2023-11-14T22:16:00") == [
        _n(2),
        _n(1),
    ]
    assert shown(tipo="url") == [_n(12)]
    assert shown(tipo="ip") == [_n(13)]
    assert shown(gravedad="alta") == [_n(14), _n(12)]
    assert shown(gravedad="baja") == [_n(0)]
    assert shown(sensor="sensor-2") == [_n(11)]
    assert shown(q="BAD.example") == [_n(12)]  # part of the value, any case
    assert shown(q="198.51.100") == [_n(13)]  # an address
    assert shown(q="%") == []  # LIKE's wildcards are text
    # Sorting by any column; the order's arrow and aria-sort on its header.
    r = app_client.get("/console/alertas", params={"orden": "valor"}, headers=an)
    assert _ids(r.text)[:2] == [_n(13), _n(0)]  # "198.51.100.77", then "host0.example"
    assert 'aria-sort="ascending"' in r.text
    assert _ids(app_client.get("/console/alertas?orden=-eventos", headers=an).text)


def test_counts_per_status_pages_and_bad_input_named_next_to_its_field(
    app_client: TestClient, q: dict[str, Any], services: Services
) -> None:
    an = q["h"]["analyst"]
    with services.db.transaction() as s:
        s.get(AlertRow, _n(1)).status = "dismissed"  # type: ignore[union-attr]
    r = app_client.get("/console/alertas", params={"entidad": "ent-a"}, headers=an)
    assert re.search(r'id="n-all">10<', r.text) and re.search(r'id="n-dismissed">1<', r.text)
    assert re.search(r'id="n-new">9<', r.text)
    # Pages of 50 by a cursor; the next page keeps the filters.
    with services.db.transaction() as s:
        store(s, [Spec(100 + i, received=at(100 + i)) for i in range(50)])
    first = app_client.get("/console/alertas", params={"entidad": "ent-a"}, headers=an).text
    nxt = re.search(r'class="next" href="([^"]+)"', first)
    assert nxt is not None
    link = nxt.group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(link).query)["entidad"] == ["ent-a"]
    second = app_client.get(link, headers=an).text
    assert len(_ids(first)) == 50 and len(_ids(second)) == 10
    assert not set(_ids(first)) & set(_ids(second))
    # A bad date or value: the queue still answers, the reason beside the field, the
    # input kept; a foreign cursor starts again from the first page.
    bad = app_client.get(
        "/console/alertas", params={"recibida_desde": "ayer", "tipo": "nada", "q": "x"}, headers=an
    )
    assert bad.status_code == 422
    assert 'id="error-recibida_desde"' in bad.text and 'value="ayer"' in bad.text
    assert 'id="error-tipo"' in bad.text and "Valor desconocido" in bad.text
    cur = app_client.get("/console/alertas", params={"cursor": "no-es-un-cursor"}, headers=an)
    assert cur.status_code == 200 and "se muestra la primera página" in cur.text


def test_an_entity_sees_only_its_own_alerts_never_red_and_cannot_act(
    app_client: TestClient, q: dict[str, Any]
) -> None:
    a = app_client.get("/console/alertas", params={"entidad": "ent-b"}, headers=q["h"]["a"])
    shown = _ids(a.text)
    assert _n(10) not in shown and _n(11) not in shown  # not B's, whatever the address says
    assert _n(15) not in shown  # never TLP:RED
    assert _n(0) in shown and 'id="lote"' in a.text and 'name="ids"' not in a.text
    assert 'id="f-entidad"' not in a.text  # no entity list for an entity
    b = app_client.get("/console/alertas", headers=q["h"]["b"])
    assert set(_ids(b.text)) == {_n(10), _n(11)}
    refused = app_client.post(
        "/console/alertas/lote", data={"accion": "acknowledge", "ids": [_n(0)]}, headers=q["h"]["a"]
    )
    assert refused.status_code == 403
    auditor = app_client.get("/console/alertas", headers=q["h"]["auditor"])
    assert _n(15) in _ids(auditor.text) and 'name="ids"' not in auditor.text


def test_the_poll_counts_only_what_arrived_since_under_the_same_filters(
    app_client: TestClient, q: dict[str, Any], services: Services
) -> None:
    an = q["h"]["analyst"]
    since = "2026-11-30T08:50:00Z"
    got = app_client.get("/console/alertas-nuevas", params={"desde": since}, headers=an)
    assert got.status_code == 200 and got.json()["nuevas"] == 2  # 14 (08:55) and 15 (09:05)
    only_b = {"desde": since, "entidad": "ent-b"}
    assert (
        app_client.get("/console/alertas-nuevas", params=only_b, headers=an).json()["nuevas"] == 0
    )
    entity = app_client.get("/console/alertas-nuevas", params={"desde": since}, headers=q["h"]["a"])
    assert entity.json()["nuevas"] == 1  # 14; not the TLP:RED one
    assert (
        app_client.get("/console/alertas-nuevas", params={"desde": "x"}, headers=an).status_code
        == 422
    )
    page = app_client.get("/console/alertas", headers=an).text
    assert 'id="nuevas"' in page and "hidden" in page.split('id="nuevas"')[1][:80]


def _bulk(client: TestClient, who: dict[str, str], **data: Any) -> Any:
    return client.post("/console/alertas/lote", data=data, headers=who, follow_redirects=False)


def test_bulk_actions_say_what_they_did_keep_the_filters_and_are_audited(
    app_client: TestClient, q: dict[str, Any], services: Services
) -> None:
    an = q["h"]["analyst"]
    back = "entidad=ent-a&q=example"
    three = [_n(1), _n(2), _n(3)]
    # Dismiss three with a reason: back to the same filters, with the message.
    r = _bulk(app_client, an, accion="dismiss", ids=three, motivo="benign", volver=back)
    assert r.status_code == 303
    where = r.headers["location"]
    assert where.startswith("/console/alertas?entidad=ent-a&q=example&hecho=dismiss&n=3")
    shown = app_client.get(where, headers=an).text
    assert "Alertas descartadas: 3 (motivo: Benigna)." in shown
    # Without a reason: refused, the same choice still checked, a Spanish reason.
    no_reason = _bulk(app_client, an, accion="dismiss", ids=[_n(4)], volver=back)
    assert no_reason.status_code == 422 and "para descartar hace falta un motivo" in no_reason.text
    assert (
        f'value="{_n(4)}" class="elegir" aria-label="Elegir la alerta host4.example" checked'
        in no_reason.text
    )
    assert _bulk(app_client, an, accion="acknowledge", ids=[]).status_code == 422
    assert _bulk(app_client, an, accion="borrar", ids=[_n(4)]).status_code == 422
    # Acknowledge, assign, promote, attach.
    ok = _bulk(app_client, an, accion="acknowledge", ids=[_n(4), _n(5)])
    assert "hecho=acknowledge&n=2" in ok.headers["location"]
    analyst_actor = alert_queue.assignable  # the names the form offers
    with services.db.transaction() as s:
        who = next(a for a in analyst_actor(s) if a.startswith("analyst:"))
    given = _bulk(app_client, an, accion="assign", ids=[_n(4)], analista=who)
    assert "hecho=assign" in given.headers["location"]
    assert (
        f"Alertas asignadas a {who}: 1."
        in app_client.get(given.headers["location"], headers=an).text
    )
    stranger = _bulk(app_client, an, accion="assign", ids=[_n(4)], analista="analyst:nadie")
    assert stranger.status_code == 422
    mine = app_client.get("/console/alertas", params={"asignada": who}, headers=an)
    assert _ids(mine.text) == [_n(4)]
    made = _bulk(app_client, an, accion="promote", ids=[_n(12), _n(13)])
    inc = int(parse_qs(urlsplit(made.headers["location"]).query)["inc"][0])
    said = app_client.get(made.headers["location"], headers=an).text
    assert f"Incidente #{inc} creado con 2 alertas." in said
    added = _bulk(app_client, an, accion="attach", ids=[_n(14)], incidente=str(inc))
    assert f"hecho=attach&n=1&inc={inc}" in added.headers["location"]
    again = _bulk(app_client, an, accion="attach", ids=[_n(0)], incidente="99999")
    assert again.status_code == 404
    with services.db.transaction() as s:
        rows = {r.id: r for r in s.execute(select(AlertRow)).scalars()}
        assert {rows[i].status for i in three} == {"dismissed"}
        assert rows[_n(4)].assignee == who
        assert rows[_n(12)].incident_id == rows[_n(14)].incident_id == inc
        actions = [a.action for a in s.execute(select(AuditRecord)).scalars()]
    assert actions.count("alert.status") >= 5 and "alert.assign" in actions
    assert "incident.open" in actions and "incident.link" in actions


def test_a_bulk_post_needs_the_sessions_csrf_token(
    app_client: TestClient, q: dict[str, Any]
) -> None:
    from tests.console import console_login

    token = q["h"]["analyst"]["Authorization"].split()[1]
    r = console_login(app_client, token)
    assert r.status_code == 303
    app_client.headers.pop("Authorization", None)
    page = app_client.get("/console/alertas").text
    no_token = app_client.post(
        "/console/alertas/lote", data={"accion": "acknowledge", "ids": [_n(0)]}
    )
    assert no_token.status_code == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    done = app_client.post(
        "/console/alertas/lote",
        data={"accion": "acknowledge", "ids": [_n(0)], "csrf": csrf.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303
