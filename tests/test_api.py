"""The HTTP API: authentication and roles on every route, ingest, alerts, entities, TLP."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core import audit
from core.tokens import Role
from correlator.store import IndicatorStore
from rules.indicator import Indicator
from tests.conftest import bearer, make_token
from tests.console import console_login
from tests.factories import observation
from vigia.wiring import Services

READERS = {Role.ADMIN, Role.ANALYST, Role.AUDITOR, Role.ENTITY}
STAFF = {Role.ADMIN, Role.ANALYST, Role.AUDITOR}
ANALYSTS = {Role.ADMIN, Role.ANALYST}
INCIDENT_ROUTES: list[tuple[str, str, dict[str, Any], set[Role]]] = [
    ("GET", "/api/v1/incidents", {}, READERS),
    ("POST", "/api/v1/incidents", {"json": {"title": "x"}}, ANALYSTS),
    ("GET", "/api/v1/incidents/metrics", {}, STAFF),
    ("GET", "/api/v1/incidents/999", {}, READERS),
    ("PATCH", "/api/v1/incidents/999", {"json": {"version": 1, "title": "y"}}, ANALYSTS),
    (
        "POST",
        "/api/v1/incidents/999/transitions",
        {"json": {"version": 1, "to": "triaged"}},
        ANALYSTS,
    ),
    (
        "POST",
        "/api/v1/incidents/999/merge",
        {"json": {"version": 1, "incident_ids": [2]}},
        ANALYSTS,
    ),
    ("POST", "/api/v1/incidents/999/split", {"json": {"version": 1, "alert_ids": ["a"]}}, ANALYSTS),
    (
        "POST",
        "/api/v1/incidents/999/alerts",
        {"json": {"version": 1, "alert_ids": ["a"]}},
        ANALYSTS,
    ),
    ("POST", "/api/v1/incidents/999/notes", {"json": {"body": "n"}}, ANALYSTS),
    ("POST", "/api/v1/incidents/999/tasks", {"json": {"title": "t"}}, ANALYSTS),
    (
        "POST",
        "/api/v1/incidents/999/observables",
        {"json": {"type": "domain", "value": "x.example"}},
        ANALYSTS,
    ),
    ("PATCH", "/api/v1/incidents/999/tasks/1", {"json": {"version": 1, "done": True}}, ANALYSTS),
    ("POST", "/api/v1/incidents/999/notifications", {"json": {}}, ANALYSTS),
    ("POST", "/api/v1/incidents/999/acknowledgement", {}, {Role.ENTITY}),
    ("POST", "/api/v1/incidents/999/replies", {"json": {"body": "r"}}, {Role.ENTITY}),
    ("GET", "/api/v1/incidents/999/export/misp", {}, STAFF),
    ("GET", "/api/v1/incidents/999/export/stix", {}, STAFF),
    ("GET", "/api/v1/incidents/999/export/pdf", {}, READERS),
    ("GET", "/console/incidentes", {}, READERS),
    ("GET", "/console/incidentes/999", {}, READERS),
    ("POST", "/console/incidentes/999/transicion", {"data": {"version": 1, "to": "x"}}, ANALYSTS),
    ("POST", "/console/incidentes/999/nota", {"data": {"body": "n"}}, ANALYSTS),
    ("POST", "/console/incidentes/999/editar", {"data": {"version": 1, "title": "t"}}, ANALYSTS),
    ("POST", "/console/incidentes/999/tarea", {"data": {"title": "t"}}, ANALYSTS),
    ("POST", "/console/incidentes/999/tareas/1", {"data": {"version": 1}}, ANALYSTS),
    ("POST", "/console/incidentes/999/notificar", {}, ANALYSTS),
    ("POST", "/console/incidentes/999/asignar", {"data": {"version": 1}}, ANALYSTS),
    ("POST", "/console/incidentes/999/acuse", {}, {Role.ENTITY}),
    ("POST", "/console/incidentes/999/respuesta", {"data": {"body": "r"}}, {Role.ENTITY}),
    # The alert page, its actions and the pivot (tests/test_console_alert.py).
    ("GET", "/console/alertas/0123456789abcdef0123456789abcdef", {}, READERS),
    ("POST", "/console/alertas/0123456789abcdef0123456789abcdef/acusar", {}, ANALYSTS),
    (
        "POST",
        "/console/alertas/0123456789abcdef0123456789abcdef/descartar",
        {"data": {"reason": "benign"}},
        ANALYSTS,
    ),
    ("POST", "/console/alertas/0123456789abcdef0123456789abcdef/promover", {}, ANALYSTS),
    # The alert queue's poll and its actions on the chosen alerts (tests/test_console_queue.py).
    ("GET", "/console/alertas-nuevas", {"params": {"desde": "2026-01-01T00:00:00Z"}}, READERS),
    (
        "POST",
        "/console/alertas/lote",
        {"data": {"accion": "acknowledge", "ids": ["0123456789abcdef0123456789abcdef"]}},
        ANALYSTS,
    ),
    ("GET", "/console/buscar", {}, READERS),
]

CERT_ROUTES: list[tuple[str, str, dict[str, Any], set[Role]]] = [
    ("GET", "/api/v1/catalogues", {}, READERS),
    ("GET", "/api/v1/catalogues/2026.1", {}, READERS),
    ("POST", "/api/v1/catalogues", {"content": b"version: x"}, {Role.ADMIN}),
    ("POST", "/api/v1/assessments", {"json": {}}, {Role.ADMIN, Role.ENTITY}),
    ("GET", "/api/v1/assessments", {}, READERS),
    ("GET", "/api/v1/assessments/999", {}, READERS),
    (
        "PUT",
        "/api/v1/assessments/999/answers/GOB-01",
        {"json": {"answer": "implemented"}},
        {Role.ENTITY},
    ),
    (
        "POST",
        "/api/v1/assessments/999/evidence",
        {
            "data": {"control_id": "GOB-01", "expires_on": "2030-01-01"},
            "files": {"file": ("e.pdf", b"%PDF-1.4", "application/pdf")},
        },
        {Role.ENTITY},
    ),
    ("GET", "/api/v1/evidence/999", {}, READERS),
    ("POST", "/api/v1/assessments/999/submit", {}, {Role.ENTITY}),
    (
        "PUT",
        "/api/v1/assessments/999/reviews/GOB-01",
        {"json": {"verdict": "accepted"}},
        ANALYSTS,
    ),
    ("POST", "/api/v1/assessments/999/return", {"json": {}}, ANALYSTS),
    ("POST", "/api/v1/assessments/999/decision", {"json": {}}, ANALYSTS),
    ("GET", "/api/v1/certificates", {}, READERS),
    ("POST", "/api/v1/certificates/VIG-X/suspend", {"json": {"reason": "r"}}, ANALYSTS),
    ("GET", "/api/v1/certification/entities/ent-a", {}, READERS),
    ("GET", "/api/v1/certification/progress", {}, STAFF),
    ("GET", "/api/v1/certification/progress/history", {}, STAFF),
    ("GET", "/api/v1/certificates/VIG-X.pdf", {}, READERS),
    ("GET", "/api/v1/assessments/999.pdf", {}, READERS),
    ("GET", "/api/v1/assessments/999.xlsx", {}, READERS),
    ("GET", "/api/v1/certification/progress.pdf", {}, STAFF),
    ("GET", "/api/v1/entities.csv", {}, STAFF),
    ("POST", "/api/v1/entities/import", {"content": b"id,name,level\n"}, {Role.ADMIN}),
    ("GET", "/api/v1/entities/ent-a/contacts", {}, READERS),
    ("PUT", "/api/v1/entities/ent-a/contacts", {"json": {}}, {Role.ADMIN, Role.ENTITY}),
    ("GET", "/api/v1/entities/ent-a/notification-preferences", {}, READERS),
    ("GET", "/api/v1/entities/ent-a/exposure", {}, READERS),
    (
        "PUT",
        "/api/v1/entities/ent-a/notification-preferences",
        {"json": {"default": "immediate"}},
        {Role.ADMIN, Role.ENTITY},
    ),
    ("GET", "/metrics", {}, {Role.ADMIN, Role.AUDITOR}),
    ("GET", "/api/v1/rules", {}, STAFF),
    ("POST", "/api/v1/rules/reload", {}, {Role.ADMIN}),
    ("GET", "/api/v1/rules/pack", {}, {Role.SENSOR, *STAFF}),
    ("GET", f"/api/v1/files/{'0' * 64}", {}, {Role.ADMIN, Role.ANALYST}),
    (
        "POST",
        "/api/v1/files",
        {"files": {"file": ("x.bin", b"hola", "application/octet-stream")}},
        {Role.SENSOR, Role.ADMIN, Role.ANALYST},
    ),
    ("GET", "/console/certificacion", {}, STAFF),
    ("GET", "/console/autoevaluacion", {}, {Role.ENTITY}),
    ("POST", "/console/autoevaluacion/iniciar", {}, {Role.ENTITY}),
    ("POST", "/console/autoevaluacion/999/respuestas", {"data": {}}, {Role.ENTITY}),
    ("POST", "/console/autoevaluacion/999/evidencia", {"data": {}}, {Role.ENTITY}),
    ("POST", "/console/autoevaluacion/999/enviar", {}, {Role.ENTITY}),
    ("GET", "/console/revisiones", {}, STAFF),
    ("GET", "/console/revisiones/999", {}, STAFF),
    ("POST", "/console/revisiones/999/veredictos", {"data": {}}, ANALYSTS),
    ("POST", "/console/revisiones/999/devolver", {"data": {}}, ANALYSTS),
    ("POST", "/console/revisiones/999/decidir", {}, ANALYSTS),
    # One answer, one verdict at a time; evidence removed and viewed; the decision's
    # preview and a refusal (tests/test_console_cert_pages.py).
    (
        "POST",
        "/console/autoevaluacion/999/controles/GOB-01",
        {"data": {"answer": "implemented"}},
        {Role.ENTITY},
    ),
    ("POST", "/console/autoevaluacion/999/evidencia/1/quitar", {}, {Role.ENTITY}),
    ("POST", "/console/autoevaluacion/999/controles/GOB-01/conservar", {}, {Role.ENTITY}),
    ("GET", "/console/evidencia/999", {}, READERS),
    (
        "POST",
        "/console/revisiones/999/controles/GOB-01",
        {"data": {"verdict": "accepted"}},
        ANALYSTS,
    ),
    ("GET", "/console/revisiones/999/decision", {}, ANALYSTS),
    ("POST", "/console/revisiones/999/denegar", {"data": {"reason": "r"}}, ANALYSTS),
]
TAXII_READERS = {*READERS, Role.PEER}
_COLLECTION = "/taxii2/vigia/collections/00000000-0000-0000-0000-000000000000"
SHARING_ROUTES: list[tuple[str, str, dict[str, Any], set[Role]]] = [
    ("GET", "/taxii2/", {}, TAXII_READERS),
    ("GET", "/taxii2/vigia/", {}, TAXII_READERS),
    ("GET", "/taxii2/vigia/collections/", {}, TAXII_READERS),
    ("GET", f"{_COLLECTION}/", {}, TAXII_READERS),
    ("GET", f"{_COLLECTION}/objects/", {}, TAXII_READERS),
    ("GET", f"{_COLLECTION}/manifest/", {}, TAXII_READERS),
    ("GET", "/taxii2/vigia/status/x/", {}, TAXII_READERS),  # the rest of /taxii2/
    ("POST", "/taxii2/vigia/status/x/", {"json": {}}, TAXII_READERS),
    ("DELETE", "/taxii2/vigia/status/x/", {}, TAXII_READERS),
    ("POST", "/api/v1/incidents/999/share/misp", {}, ANALYSTS),
]

# Every route but /health, with a request that reaches its handler, and the
# roles allowed to call it.
ROUTES: list[tuple[str, str, dict[str, Any], set[Role]]] = [
    (
        "POST",
        "/api/v1/observations",
        {"json": {"batch_id": "b-00000001", "observations": []}},
        {Role.SENSOR, Role.ADMIN},
    ),
    ("GET", "/api/v1/alerts", {}, {Role.ADMIN, Role.ANALYST, Role.AUDITOR, Role.ENTITY}),
    (
        "GET",
        "/api/v1/alerts/0123456789abcdef0123456789abcdef",
        {},
        {Role.ADMIN, Role.ANALYST, Role.AUDITOR, Role.ENTITY},
    ),
    (
        "PATCH",
        "/api/v1/alerts/0123456789abcdef0123456789abcdef",
        {"json": {"status": "acknowledged"}},
        {Role.ADMIN, Role.ANALYST},
    ),
    ("POST", "/api/v1/tokens", {"json": {"role": "auditor", "name": "x"}}, {Role.ADMIN}),
    ("DELETE", "/api/v1/tokens/nope", {}, {Role.ADMIN}),
    ("GET", "/api/v1/entities", {}, {Role.ADMIN, Role.ANALYST, Role.AUDITOR, Role.ENTITY}),
    (
        "POST",
        "/api/v1/entities",
        {"json": {"id": "ent-x", "name": "X", "level": "central"}},
        {Role.ADMIN},
    ),
    (
        "POST",
        "/api/v1/indicators",
        {"files": {"file": ("i.csv", b"type,value\nip-dst,192.0.2.1\n", "text/csv")}},
        {Role.ADMIN, Role.ANALYST},
    ),
    ("GET", "/api/v1/audit/verify", {}, {Role.ADMIN, Role.AUDITOR}),
    (
        "POST",
        "/api/v1/sensors/heartbeat",
        {"json": {"observer": "sensor-1", "counters": {}}},
        {Role.SENSOR, Role.ADMIN},
    ),
    ("GET", "/api/v1/sensors", {}, {Role.ADMIN, Role.ANALYST, Role.AUDITOR}),
    ("GET", "/api/v1/sources", {}, {Role.ADMIN, Role.ANALYST, Role.AUDITOR}),
    ("GET", "/console/alertas", {}, {Role.ADMIN, Role.ANALYST, Role.AUDITOR, Role.ENTITY}),
    ("GET", "/console/sensores", {}, {Role.ADMIN, Role.ANALYST, Role.AUDITOR}),
    ("GET", "/console/fuentes", {}, {Role.ADMIN, Role.ANALYST, Role.AUDITOR}),
    ("POST", "/console/logout", {}, {Role.ADMIN, Role.ANALYST, Role.AUDITOR, Role.ENTITY}),
    *INCIDENT_ROUTES,
    *CERT_ROUTES,
    *SHARING_ROUTES,
]


def _add_entities(services: Services) -> None:
    from certification.registry import Registry

    with services.db.transaction() as s:
        Registry.add(s, "ent-a", "Entidad A", "central", ["10.1.0.0/16"], ["a.gob.bo"], "test")
        Registry.add(s, "ent-b", "Entidad B", "municipal", ["10.2.0.0/16"], [], "test")


@pytest.fixture
def tokens(services: Services) -> dict[Role, str]:
    _add_entities(services)
    return {
        r: make_token(
            services,
            r,
            "ent-a" if r is Role.ENTITY else None,
            name="sensor-1" if r is Role.SENSOR else None,
        )
        for r in Role
    }


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One centre (SQLite) for the whole route matrix: who may call what does not
    depend on the backend, and a fresh database per route made the matrix slow."""
    from core.settings import load_settings
    from vigia.wiring import build

    # Every route is tried with a wrong token from one address: no lockout here
    # (the throttle has its own tests in tests/test_security_console.py).
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("matrix"), database_url="", auth_fail_limit=100_000
    )
    services = build(settings)
    _add_entities(services)
    tokens = {
        r: make_token(
            services,
            r,
            "ent-a" if r is Role.ENTITY else None,
            name="sensor-1" if r is Role.SENSOR else None,
        )
        for r in Role
    }
    yield TestClient(create_app(services)), tokens
    services.close()


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "allowed"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
def test_every_route_needs_a_token_and_a_role(
    matrix: tuple[TestClient, dict[Role, str]],
    method: str,
    path: str,
    kwargs: dict[str, Any],
    allowed: set[Role],
) -> None:
    client, tokens = matrix

    def call(headers: dict[str, str]) -> int:
        kw = dict(kwargs)
        if "files" in kw:  # a stream is consumed per request
            name, data, ctype = kw["files"]["file"]
            kw["files"] = {"file": (name, io.BytesIO(data), ctype)}
        client.cookies.clear()
        return client.request(method, path, headers=headers, **kw).status_code

    assert call({}) == 401
    assert call(bearer("vga_not-a-real-token")) == 401
    for role, token in tokens.items():
        status = call(bearer(token))
        if role in allowed:  # let in, and answered: a refusal of the input, never a crash
            assert status not in (401, 403) and status < 500, (role, status)
        else:
            assert status == 403, (role, status)


def test_health_is_open_and_openapi_lists_routes(
    client: TestClient, tokens: dict[Role, str]
) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/api/openapi.json").status_code == 401  # the schema is for token holders
    # the documentation pages too: a person without a session is sent to the login
    docs = client.get("/api/docs", follow_redirects=False)
    assert docs.status_code == 303 and docs.headers["location"] == "/console/login"
    paths = client.get("/api/openapi.json", headers=bearer(tokens[Role.AUDITOR])).json()["paths"]
    assert {"/api/v1/observations", "/api/v1/alerts", "/api/v1/alerts/{alert_id}"} <= set(paths)


def test_revoked_token_is_refused(
    client: TestClient, services: Services, tokens: dict[Role, str]
) -> None:
    made = client.post(
        "/api/v1/tokens",
        json={"role": "analyst", "name": "ana"},
        headers=bearer(tokens[Role.ADMIN]),
    )
    assert made.status_code == 201
    new = made.json()
    assert client.get("/api/v1/alerts", headers=bearer(new["token"])).status_code == 200
    gone = client.delete(f"/api/v1/tokens/{new['id']}", headers=bearer(tokens[Role.ADMIN]))
    assert gone.status_code == 204
    assert client.get("/api/v1/alerts", headers=bearer(new["token"])).status_code == 401


def _load(services: Services, *inds: Indicator) -> None:
    with services.db.transaction() as s:
        IndicatorStore.save(s, inds)


def _ingest(client: TestClient, token: str, batch_id: str, docs: list[dict[str, Any]]) -> Any:
    return client.post(
        "/api/v1/observations",
        json={"batch_id": batch_id, "observations": docs},
        headers=bearer(token),
    )


def test_ingest_matches_stores_and_is_idempotent(
    client: TestClient, services: Services, tokens: dict[Role, str]
) -> None:
    _load(
        services,
        Indicator("domain", "evil.example", "feed-x", tlp="amber"),
        Indicator("ip-dst", "203.0.113.0/24", "feed-y"),
    )
    docs = [
        observation(),
        observation(dns__question__name="www.evil.example"),
        observation(ts=1_700_000_010.0, dns__question__name="www.evil.example"),
        observation(src="10.2.3.4", dst="198.51.100.1"),
    ]
    first = _ingest(client, tokens[Role.SENSOR], "batch-0001", docs)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "batch_id": "batch-0001",
        "observations": 4,
        "alerts": 2,
        "duplicate": False,
    }
    again = _ingest(client, tokens[Role.SENSOR], "batch-0001", docs)
    assert again.json()["duplicate"] is True
    alerts = client.get("/api/v1/alerts", headers=bearer(tokens[Role.ANALYST])).json()["alerts"]
    assert len(alerts) == 2
    by_field = {a["threat"]["enrichments"][0]["matched"]["field"]: a for a in alerts}
    dns = by_field["dns.question.name"]
    assert dns["event"]["count"] == 2  # the retry added nothing
    assert dns["organization"] == {"id": "ent-a", "name": "Entidad A"}
    assert dns["threat"]["enrichments"][0]["indicator"]["marking"]["tlp"] == "AMBER"
    assert by_field["destination.ip"]["destination"]["ip"] == "203.0.113.9"
    # The same match in a later batch, same window: folded into the same alert.
    _ingest(
        client,
        tokens[Role.SENSOR],
        "batch-0002",
        [observation(ts=1_700_000_020.0, dns__question__name="evil.example")],
    )
    alerts = client.get(
        "/api/v1/alerts", params={"indicator_type": "domain"}, headers=bearer(tokens[Role.ANALYST])
    ).json()["alerts"]
    counts = sorted(a["event"]["count"] for a in alerts)
    assert counts == [1, 2]  # a different atomic value is a different alert


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"batch_id": "short", "observations": []}, "batch_id"),
        ({"observations": []}, "batch_id"),
        ({"batch_id": "batch-0009", "observations": [{"@timestamp": "nope"}]}, "observations[0]"),
        (
            {
                "batch_id": "batch-0009",
                "observations": [
                    {
                        "@timestamp": "2024-01-01T00:00:00Z",
                        "observer": {"name": "sensor-1"},
                        "source": {"ip": "10.0.0.1"},
                        "destination": {"ip": "not-an-ip"},
                    }
                ],
            },
            "observations[0]",
        ),
        ({"batch_id": "batch-0009", "observations": "x"}, "observations"),
    ],
)
def test_bad_batches_get_422_and_store_nothing(
    client: TestClient, tokens: dict[Role, str], body: dict[str, Any], reason: str
) -> None:
    good = _ingest(client, tokens[Role.SENSOR], "batch-good", [observation()])
    assert good.status_code == 200
    r = client.post("/api/v1/observations", json=body, headers=bearer(tokens[Role.SENSOR]))
    assert r.status_code == 422
    assert reason in r.json()["detail"]
    # What was accepted before stays; the bad batch id was not consumed.
    assert _ingest(client, tokens[Role.SENSOR], "batch-good", [observation()]).json()["duplicate"]
    if isinstance(body.get("observations"), list) and body.get("batch_id") == "batch-0009":
        ok = _ingest(client, tokens[Role.SENSOR], "batch-0009", [observation()])
        assert ok.json()["duplicate"] is False


def test_a_body_that_is_not_json_or_holds_no_objects_is_refused(
    client: TestClient, tokens: dict[Role, str]
) -> None:
    h = {**bearer(tokens[Role.SENSOR]), "Content-Type": "application/json"}
    r = client.post("/api/v1/observations", content=b'{"batch_id": "batch-0010", "obs', headers=h)
    assert r.status_code == 400 and "not JSON" in r.json()["detail"]
    body = {"batch_id": "batch-0010", "observations": [observation(), 7]}
    r = client.post("/api/v1/observations", json=body, headers=h)
    assert r.status_code == 422 and "observations[1]" in r.json()["detail"]


def test_sensor_may_not_report_as_another(client: TestClient, tokens: dict[Role, str]) -> None:
    r = _ingest(client, tokens[Role.SENSOR], "batch-spoof", [observation(observer="other")])
    assert r.status_code == 422 and "observations[0]" in r.json()["detail"]


def test_alert_filters_and_cursor_pagination(
    client: TestClient, services: Services, tokens: dict[Role, str]
) -> None:
    _load(
        services, Indicator("hostname", "bad.example", "f"), Indicator("ip-dst", "192.0.2.7", "f")
    )
    docs = [
        observation(
            src=f"10.1.0.{i}", ts=1_700_000_000.0 + i * 4000, dns__question__name="bad.example"
        )
        for i in range(1, 8)
    ]
    docs += [observation(src="10.2.0.1", dst="192.0.2.7", ts=1_700_000_000.0)]
    assert _ingest(client, tokens[Role.SENSOR], "batch-many", docs).json()["alerts"] == 8
    h = bearer(tokens[Role.ANALYST])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/alerts", params=params, headers=h).json()
        seen += [a["event"]["id"] for a in page["alerts"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 8
    stamps = [client.get(f"/api/v1/alerts/{i}", headers=h).json()["@timestamp"] for i in seen]
    assert stamps == sorted(stamps, reverse=True)
    q = {"indicator_type": "ip-dst"}
    assert len(client.get("/api/v1/alerts", params=q, headers=h).json()["alerts"]) == 1
    q = {"entity": "ent-b"}
    assert len(client.get("/api/v1/alerts", params=q, headers=h).json()["alerts"]) == 1
    q = {"since": "2023-11-15T00:00:00Z", "until": "2023-11-15T03:00:00Z"}
    windowed = client.get("/api/v1/alerts", params=q, headers=h).json()["alerts"]
    assert all("2023-11-15T00" <= a["@timestamp"] < "2023-11-15T03" for a in windowed)
    assert 0 < len(windowed) < 8
    bad = client.get("/api/v1/alerts", params={"cursor": "!!!"}, headers=h)
    assert bad.status_code == 422
    assert client.get("/api/v1/alerts", params={"limit": 0}, headers=h).status_code == 422


def test_entity_sees_only_its_own_and_never_red(
    client: TestClient, services: Services, tokens: dict[Role, str]
) -> None:
    _load(
        services,
        Indicator("hostname", "green.example", "f", tlp="green"),
        Indicator("hostname", "red.example", "f", tlp="red"),
    )
    docs = [
        observation(src="10.1.0.5", dns__question__name="green.example"),
        observation(src="10.1.0.5", dns__question__name="red.example"),
        observation(src="10.2.0.5", dns__question__name="green.example"),
    ]
    _ingest(client, tokens[Role.SENSOR], "batch-ent", docs)
    analyst = client.get("/api/v1/alerts", headers=bearer(tokens[Role.ANALYST])).json()["alerts"]
    assert len(analyst) == 3
    ent = bearer(tokens[Role.ENTITY])  # bound to ent-a
    mine = client.get("/api/v1/alerts", headers=ent).json()["alerts"]
    assert [a["organization"]["id"] for a in mine] == ["ent-a"]
    assert mine[0]["threat"]["enrichments"][0]["indicator"]["value"] == "green.example"
    assert client.get("/api/v1/alerts", params={"entity": "ent-b"}, headers=ent).status_code == 403
    others = [a["event"]["id"] for a in analyst if a["event"]["id"] != mine[0]["event"]["id"]]
    for other in others:
        assert client.get(f"/api/v1/alerts/{other}", headers=ent).status_code == 404
    ents = client.get("/api/v1/entities", headers=ent).json()
    assert [e["id"] for e in ents] == ["ent-a"]


def test_status_change_is_audited(
    client: TestClient, services: Services, tokens: dict[Role, str]
) -> None:
    _load(services, Indicator("hostname", "x.example", "f"))
    _ingest(client, tokens[Role.SENSOR], "batch-st", [observation(dns__question__name="x.example")])
    h = bearer(tokens[Role.ANALYST])
    aid = client.get("/api/v1/alerts", headers=h).json()["alerts"][0]["event"]["id"]
    r = client.patch(f"/api/v1/alerts/{aid}", json={"status": "dismissed"}, headers=h)
    assert r.status_code == 422 and "reason" in r.json()["detail"]
    r = client.patch(
        f"/api/v1/alerts/{aid}", json={"status": "dismissed", "reason": "false_positive"}, headers=h
    )
    assert r.status_code == 200 and r.json()["vigia"]["status"] == "dismissed"
    listed = client.get("/api/v1/alerts", params={"status": "dismissed"}, headers=h).json()
    assert [a["event"]["id"] for a in listed["alerts"]] == [aid]
    with services.db.transaction(write=False) as s:
        actions = [r.action for r in s.query(audit.AuditRecord).order_by(audit.AuditRecord.seq)]
    assert actions[-1] == "alert.status"
    assert (
        client.patch(
            "/api/v1/alerts/" + "0" * 32, json={"status": "acknowledged"}, headers=h
        ).status_code
        == 404
    )


def test_indicator_upload(client: TestClient, tokens: dict[Role, str]) -> None:
    h = bearer(tokens[Role.ANALYST])
    ok = client.post(
        "/api/v1/indicators",
        headers=h,
        files={"file": ("i.csv", b"type,value\nip-dst,192.0.2.1\ndomain,x.test\n")},
    )
    assert ok.status_code == 201 and ok.json()["loaded"] == 2
    bad = client.post(
        "/api/v1/indicators", headers=h, files={"file": ("b.csv", b"type,value\nip-dst,nope\n")}
    )
    assert bad.status_code == 422 and bad.json()["detail"].startswith("b.csv:2:")
    r = _ingest(client, tokens[Role.SENSOR], "batch-up", [observation(dst="192.0.2.1")])
    assert r.json()["alerts"] == 1  # the live index picked up the upload


def test_console_login_and_alerts_page(
    client: TestClient, services: Services, tokens: dict[Role, str]
) -> None:
    _load(services, Indicator("hostname", "c.example", "f"))
    _ingest(
        client, tokens[Role.SENSOR], "batch-con", [observation(dns__question__name="c.example")]
    )
    assert client.get("/console/alertas").status_code == 401
    bad = console_login(client, "vga_wrong")
    assert bad.status_code == 401 and "Token inválido" in bad.text
    r = console_login(client, tokens[Role.ANALYST])
    assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
    page = client.get("/console/alertas")
    assert page.status_code == 200
    assert "Alertas" in page.text and "c.example" in page.text and "Entidad A" in page.text
    assert client.get("/console/alertas", params={"lang": "en"}).text.count("Alerts") >= 1
    sensor_login = console_login(client, tokens[Role.SENSOR])
    assert sensor_login.status_code == 401


def test_several_sources_one_alert_with_their_enrichments(
    client: TestClient, services: Services, tokens: dict[Role, str]
) -> None:
    _load(
        services,
        Indicator("hostname", "shared.example", "feed-x", tlp="green", confidence=40),
        Indicator("hostname", "shared.example", "feed-y", tlp="amber", confidence=90),
    )
    docs = [
        observation(dns__question__name="shared.example"),
        observation(ts=1_700_000_030.0, dns__question__name="shared.example"),
    ]
    r = _ingest(client, tokens[Role.SENSOR], "batch-two-sources", docs)
    assert r.json()["alerts"] == 1
    alert = client.get("/api/v1/alerts", headers=bearer(tokens[Role.ANALYST])).json()["alerts"][0]
    assert alert["event"]["count"] == 2  # two sightings, not four
    assert [
        (e["indicator"]["provider"], e["indicator"]["marking"]["tlp"])
        for e in alert["threat"]["enrichments"]
    ] == [("feed-x", "GREEN"), ("feed-y", "AMBER")]
    assert alert["event"]["severity"] == 90  # the most confident source


def test_upload_with_some_bad_lines_loads_the_rest(
    client: TestClient, tokens: dict[Role, str]
) -> None:
    r = client.post(
        "/api/v1/indicators",
        headers=bearer(tokens[Role.ANALYST]),
        files={
            "file": (
                "mixed.csv",
                b"type,value\nip-dst,192.0.2.8\nip-dst,999.1.1.1\ndomain,ok.test\n",
            )
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["loaded"] == 2 and body["skipped"]["rejected"] == 1
    assert body["rejected"][0].startswith("mixed.csv:3: ")


def test_severity_follows_confidence_threat_and_where_seen() -> None:
    from correlator.alerts import Match, severity
    from sensors.observation import Observation

    obs = Observation(0.0, "s", "10.0.0.1", "10.0.0.2", 1, 2, "tcp", "1:x")
    ind = Indicator("sha256", "ab" * 32, "f", confidence=60)
    assert severity(Match(obs, "file.hash.sha256", "ab" * 32, ind)) == 75  # the file itself
    name = Indicator("filename", "invoice.exe", "f", confidence=60)
    assert severity(Match(obs, "file.name", "invoice.exe", name)) == 40  # weak evidence
    high = Indicator("ip-dst", "10.0.0.2", "f", confidence=30, threat_level=1)
    assert severity(Match(obs, "destination.ip", "10.0.0.2", high)) == 80


def test_the_matrix_covers_every_route(client: TestClient) -> None:
    """A route added without a line in ROUTES (and so without its 401/403 proof) fails here."""
    from fastapi.routing import APIRoute

    open_routes = {
        ("GET", "/health"),
        ("GET", "/ready"),  # readiness, open like /health (tests/test_operations.py)
        ("GET", "/console/login"),
        ("POST", "/console/login"),
        ("GET", "/console/sso/entrar"),  # single sign-on: tests/test_sso_console.py
        ("GET", "/console/sso/retorno"),
        ("GET", "/"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/docs"),  # to the login without a session (tests/test_openapi.py)
        ("GET", "/api/v1/public/certificates/{cert_id}"),  # public verification, tested apart
        ("GET", "/verificar/{cert_id}"),
    }  # the last: tested above
    matrix = {
        (
            m,
            p.replace("0123456789abcdef0123456789abcdef", "{alert_id}")
            .replace("/tokens/nope", "/tokens/{token_id}")
            .replace("/incidents/999", "/incidents/{incident_id}")
            .replace("/incidentes/999", "/incidentes/{incident_id}")
            .replace("/tasks/1", "/tasks/{task_id}")
            .replace("/tareas/1", "/tareas/{task_id}")
            .replace("/catalogues/2026.1", "/catalogues/{version}")
            .replace("/assessments/999", "/assessments/{assessment_id}")
            .replace("/GOB-01", "/{control_id}")
            .replace("/evidence/999", "/evidence/{evidence_id}")
            .replace("/VIG-X/suspend", "/{cert_id}/{action}")
            .replace("/VIG-X.pdf", "/{cert_id}.pdf")
            .replace("/entities/ent-a", "/entities/{entity_id}")
            .replace("/autoevaluacion/999", "/autoevaluacion/{assessment_id}")
            .replace("/evidencia/1/quitar", "/evidencia/{evidence_id}/quitar")
            .replace("/console/evidencia/999", "/console/evidencia/{evidence_id}")
            .replace("/revisiones/999", "/revisiones/{assessment_id}")
            .replace(_COLLECTION, "/taxii2/vigia/collections/{collection_id}")
            .replace("/taxii2/vigia/status/x/", "/taxii2/{rest:path}")
            .replace("/files/" + "0" * 64, "/files/{sha256}"),
        )
        for m, p, _, _ in ROUTES
    }

    def walk(items: list[Any]) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for r in items:
            if isinstance(r, APIRoute):
                found |= {(m, r.path) for m in r.methods}
            elif hasattr(r, "original_router"):  # an included router, resolved lazily
                found |= walk(r.original_router.routes)
            elif isinstance(getattr(r, "path", None), str) and getattr(r, "methods", None):
                found |= {(m, r.path) for m in r.methods}
        return found

    routes = walk(client.app.routes)  # type: ignore[attr-defined]
    routes -= {("HEAD", p) for _, p in routes}
    assert routes - open_routes == matrix
