"""Issue 13, findings 1, 2, 8 and 13 (names, extra keys): the server's input and
output path under hostile load, on a real `vigia serve` process where it matters.

- uploads run off the event loop and no write transaction spans hashing or YARA:
  nine concurrent uploads, /health answers within a second, none is a 503;
- a body is refused before it is read when the caller has no valid credential, and
  every route kind has a streamed body cap (413);
- integer path ids are bounded (no 500 from an id past SQLite's 64-bit integers);
- names refuse NUL, other control and bidi-override characters; input models
  refuse unknown keys.
"""

from __future__ import annotations

import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api import limits
from api.app import create_app
from core.settings import load_settings
from core.tokens import Role
from tests.centre import free_port, wait_answering
from tests.conftest import make_token
from vigia.wiring import Services, build


@dataclass
class Served:
    url: str
    port: int
    pid: int
    admin: str
    analyst: str
    entity: str
    sensor: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real `vigia serve` on SQLite (the embedded default), with one token per role."""
    data = tmp_path_factory.mktemp("served") / "data"
    s = build(load_settings(data_dir=data, database_url=""))
    try:
        from certification import assessments
        from certification.registry import Registry

        with s.db.transaction() as session:
            Registry.add(session, "ent-a", "Entidad A", "central", [], [], "test")
            assessments.open_assessment(session, "ent-a", "test")  # id 1
        tokens = {
            "admin": make_token(s, Role.ADMIN),
            "analyst": make_token(s, Role.ANALYST),
            "entity": make_token(s, Role.ENTITY, "ent-a"),
            "sensor": make_token(s, Role.SENSOR, name="edge-1"),
        }
    finally:
        s.close()
    port = free_port()
    env = {**os.environ, "VIGIA_DATA_DIR": str(data)}
    env.pop("VIGIA_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigia", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group: stopped with every child below
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(url + "/ready", proc)
        yield Served(url, port, proc.pid, **tokens)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- finding 1: uploads do not stall the server --------------------------------------


def test_nine_concurrent_uploads_leave_health_fast_and_none_is_refused(served: Served) -> None:
    """3 clients x 3 concurrent uploads of 1 MiB to /api/v1/files, and three evidence
    uploads beside them: each one stored, and /health, probed all along, answers
    every time within a second (or five times its slowest answer before the uploads,
    on a machine slow enough to need more)."""
    blobs = [os.urandom(1024 * 1024) for _ in range(3)]
    statuses: list[int] = []
    evidence: list[int] = []
    health: list[float] = []
    done = threading.Event()

    def upload(n: int) -> None:
        with httpx.Client(base_url=served.url, timeout=120) as c:
            r = c.post(
                "/api/v1/files",
                headers=_bearer(served.analyst),
                files={"file": (f"sample-{n}.bin", blobs[n % 3])},
                data={"source": "upload"},
            )
            statuses.append(r.status_code)

    def attach(n: int) -> None:
        pdf = b"%PDF-1.4\n" + blobs[n]
        with httpx.Client(base_url=served.url, timeout=120) as c:
            r = c.post(
                "/api/v1/assessments/1/evidence",
                headers=_bearer(served.entity),
                data={"control_id": f"GOB-0{n + 1}", "expires_on": "2099-01-01"},
                files={"file": (f"politica-{n}.pdf", pdf, "application/pdf")},
            )
            evidence.append(r.status_code)

    def probe() -> None:
        with httpx.Client(base_url=served.url, timeout=30) as c:
            while not done.is_set():
                t0 = time.monotonic()
                assert c.get("/health").status_code == 200
                health.append(time.monotonic() - t0)
                time.sleep(0.05)

    # The bound is the machine's own pace times five (at least 1 s): on a crowded
    # machine every answer is slower; a server stalled by the uploads is far slower.
    with httpx.Client(base_url=served.url, timeout=30) as c:
        quiet = []
        for _ in range(20):
            t0 = time.monotonic()
            c.get("/health")
            quiet.append(time.monotonic() - t0)
    bound = max(1.0, 5 * max(quiet))
    prober = threading.Thread(target=probe)
    prober.start()
    workers = [threading.Thread(target=upload, args=(n,)) for n in range(9)]
    workers += [threading.Thread(target=attach, args=(n,)) for n in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=180)
    done.set()
    prober.join(timeout=30)
    assert statuses == [200] * 9, statuses
    assert evidence == [201] * 3, evidence
    assert health, "/health was never answered"
    assert max(health) < bound, f"/health took {max(health):.2f} s during the uploads"


def _routes(items: list[object]) -> Iterator[APIRoute]:
    """Every API route of the app, through FastAPI's lazily included routers."""
    for r in items:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "original_router"):
            yield from _routes(r.original_router.routes)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


# The only coroutines a request may run on the event loop: each awaits the request
# body and nothing else; the blocking work is in plain functions (worker threads).
# (By name, so that a move between modules keeps its reason.)
ASYNC_ALLOWED = {
    "read_body": "awaits the raw body (YAML, CSV, a sensor's batch): api.limits",
    "read_form": "awaits the form; Starlette spools its files in a thread: api.limits",
    "console_principal": "awaits the form for the console's CSRF token only",
    "health": "liveness: no I/O at all, so it answers while every worker thread is busy",
}


@pytest.fixture
def app(sqlite_services: Services) -> FastAPI:
    return create_app(sqlite_services)


def test_no_route_or_dependency_runs_blocking_work_on_the_event_loop(app: FastAPI) -> None:
    """An `async def` endpoint or dependency runs on the event loop: a database
    call there (SQLite waits up to busy_timeout for the write lock) stalls every
    other request. Each one must be on the allow-list above, with its reason."""
    found: dict[str, str] = {}
    for route in _routes(app.routes):
        for call in _calls(route.dependant):
            target = call if inspect.isfunction(call) else getattr(call, "__call__", call)  # noqa: B004
            if inspect.iscoroutinefunction(target):
                found.setdefault(call.__qualname__, f"{call.__module__}, {route.path}")
    unexpected = {name: path for name, path in found.items() if name not in ASYNC_ALLOWED}
    assert not unexpected, f"async endpoints or dependencies (make them plain def): {unexpected}"


# -- finding 2: credentials before the body; a cap per route kind ----------------------


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _stalled(port: int, head: str, wait_s: float = 30.0) -> str:
    """Send a request's head (and no body at all), then read what comes back. The
    wait is long because a crowded CI machine once took over 5 s to answer; a
    server that waited for the body would never answer at all."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(head.encode())
        try:
            return sock.recv(65536).decode("latin-1")
        except TimeoutError:
            return ""


def _media_type(path: str) -> str:
    """What the route parses: the body is read only when the type matches."""
    if path.endswith(("/files", "/indicators", "evidence", "evidencia")):
        return "multipart/form-data; boundary=b0undary"
    if path.startswith("/console/"):
        return "application/x-www-form-urlencoded"
    return "application/json"


def _head(path: str, length: int, token: str | None = None, kind: str = "application/json") -> str:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        f"Content-Type: {kind}\r\nContent-Length: {length}\r\n\r\n"
    )


@pytest.mark.parametrize(
    "path",
    ["/api/v1/incidents/1/notes", "/api/v1/files", "/console/incidentes/1/nota"],
)
def test_no_credential_is_refused_before_the_body_is_sent(served: Served, path: str) -> None:
    """The head says 10 MB follow, none do: the 401 comes anyway (nothing waited
    for the body), for the API (JSON) and the console (the login form)."""
    for token in (None, "vg_not-a-real-token"):
        answer = _stalled(served.port, _head(path, 10_000_000, token, _media_type(path)))
        assert answer.startswith("HTTP/1.1 401"), (path, token, answer[:200])


def test_an_unauthenticated_100_mb_body_leaves_the_servers_memory_flat(served: Served) -> None:
    """Finding 2 measured: 100 MB of valid JSON with no token, streamed. The
    server's peak resident memory (VmHWM, reset first) grows by less than 20 MiB,
    and the answer is the 401."""
    Path(f"/proc/{served.pid}/clear_refs").write_text("5")  # peak := current
    before = _rss_kib(served.pid)
    chunk = b"1," * (512 * 1024)

    def body() -> Iterator[bytes]:
        yield b"["
        for _ in range(100):  # ~100 MB
            yield chunk
        yield b"1]"

    status = None
    # The server may close before the client has sent it all.
    with httpx.Client(base_url=served.url, timeout=120) as c, suppress(httpx.TransportError):
        status = c.post(
            "/api/v1/incidents/1/notes",
            content=body(),
            headers={"Content-Type": "application/json"},
        ).status_code
    peak = _rss_kib(served.pid, "VmHWM")
    assert peak - before < 20 * 1024, f"peak RSS grew by {(peak - before) // 1024} MiB"
    assert status in (None, 401)


def test_the_body_guard_and_the_routes_agree_on_what_is_open(app: FastAPI) -> None:
    """The guard lets a body through unauthenticated only to api.limits.OPEN_POSTS;
    every other route that takes a body authenticates in its own dependencies too
    (the guard is not the only check), and every open one is listed."""
    checks = {"authenticate", "current_principal", "_console_auth"}
    open_routes = set()
    for route in _routes(app.routes):
        if route.methods <= {"GET", "HEAD", "OPTIONS"}:
            continue
        names = {getattr(c, "__name__", "") for c in _calls(route.dependant)}
        if not names & checks:
            open_routes.add(route.path)
    assert open_routes == set(limits.OPEN_POSTS)


KIND_CAPS = {
    # path: (the kind's cap, as api.limits computes it for the default settings)
    "/api/v1/observations": limits.INGEST,
    "/api/v1/files": 32 * 1024 * 1024 + limits.SLACK,
    "/api/v1/assessments/1/evidence": 10 * 1024 * 1024 + limits.SLACK,
    "/console/autoevaluacion/1/evidencia": 10 * 1024 * 1024 + limits.SLACK,
    "/api/v1/indicators": limits.INDICATORS + limits.SLACK,
    "/api/v1/catalogues": limits.CATALOGUE,
    "/api/v1/entities/import": limits.ENTITIES_CSV,
    "/api/v1/incidents/1/notes": limits.SMALL,
    "/api/v1/tokens": limits.SMALL,
    "/console/incidentes/1/nota": limits.SMALL,
}


@pytest.mark.parametrize("path", sorted(KIND_CAPS))
def test_each_route_kind_refuses_a_declared_length_past_its_cap(served: Served, path: str) -> None:
    """Content-Length one byte past the kind's cap: 413 at once, before any body."""
    token = served.entity if "evidenc" in path else served.admin
    kind = _media_type(path)
    answer = _stalled(served.port, _head(path, KIND_CAPS[path] + 1, token, kind))
    assert answer.startswith("HTTP/1.1 413"), answer[:300]
    # At the cap itself the head is accepted: the server waits for the body.
    assert _stalled(served.port, _head(path, KIND_CAPS[path], token, kind), wait_s=1.0) == ""


def test_a_streamed_body_is_cut_off_at_the_cap(served: Served) -> None:
    """Chunked (no Content-Length): counted as it arrives, 413 once past 1 MiB."""

    def body() -> Iterator[bytes]:
        for _ in range(64):  # 4 MiB in all
            yield b"x" * 65536

    with httpx.Client(base_url=served.url, timeout=60) as c:
        try:
            r = c.post(
                "/api/v1/incidents/1/notes",
                content=body(),
                headers={**_bearer(served.analyst), "Content-Type": "application/json"},
            )
        except httpx.TransportError:
            pytest.fail("the server closed without answering")
        assert r.status_code == 413 and "larger than" in r.json()["detail"]
        # Just under the small cap, the body reaches its model (which refuses it).
        r = c.post(
            "/api/v1/incidents/1/notes",
            json={"body": "x" * 900_000},
            headers=_bearer(served.analyst),
        )
        assert r.status_code == 422


# -- finding 8: integer path ids are bounded --------------------------------------------


def _int_path_params(route: APIRoute) -> list[str]:
    return [p.name for p in route.dependant.path_params if p.field_info.annotation is int]


def _bounded(route: APIRoute, name: str) -> bool:
    (param,) = [p for p in route.dependant.path_params if p.name == name]
    le = [m.le for m in param.field_info.metadata if getattr(m, "le", None) is not None]
    return bool(le) and le[0] <= 2**63 - 1


def test_every_integer_path_id_is_bounded_to_64_bits(app: FastAPI) -> None:
    """The class of finding 8: every route's integer path parameter declares the
    database's bound (api.inputs.Id), so a new route cannot forget it."""
    routes = [r for r in _routes(app.routes) if _int_path_params(r)]
    assert len(routes) > 20  # incidents, tasks, assessments, evidence, console pages
    unbounded = [(r.path, n) for r in routes for n in _int_path_params(r) if not _bounded(r, n)]
    assert not unbounded


@pytest.mark.parametrize("huge", [2**63, 2**64, -(2**63) - 1])
def test_ids_past_64_bits_get_404_or_422_on_every_route(
    app: FastAPI, sqlite_services: Services, huge: int
) -> None:
    """Every route with an integer path id, every method, as an admin and as an
    entity (console routes through the bearer header too): never a 500."""
    tokens = [
        make_token(sqlite_services, Role.ADMIN),
        make_token(sqlite_services, Role.ENTITY, _entity(sqlite_services)),
    ]
    bodies: dict[str, dict[str, Any]] = {
        "/api/v1/incidents/{incident_id}/notes": {"body": "x"},
        "/api/v1/incidents/{incident_id}/replies": {"body": "x"},
        "/api/v1/incidents/{incident_id}/tasks": {"title": "x"},
        "/api/v1/incidents/{incident_id}/notifications": {},
        "/api/v1/incidents/{incident_id}/merge": {"version": 1, "incident_ids": [huge]},
        "/api/v1/assessments/{assessment_id}/return": {},
        "/api/v1/assessments/{assessment_id}/decision": {},
    }
    client = TestClient(app, raise_server_exceptions=False)
    seen = 0
    for route in _routes(app.routes):
        ints = _int_path_params(route)
        if not ints:
            continue
        path = route.path
        for name in re.findall(r"{(\w+)}", path):
            path = path.replace(f"{{{name}}}", str(huge) if name in ints else "x")
        for method in route.methods - {"HEAD"}:
            for token in tokens:
                r = client.request(
                    method, path, headers=_bearer(token), json=bodies.get(route.path)
                )
                assert r.status_code in (403, 404, 405, 422), (method, path, r.status_code)
                seen += 1
    assert seen > 40


def test_integers_past_64_bits_in_bodies_are_refused(
    app: FastAPI, sqlite_services: Services
) -> None:
    """Found by schemathesis: a heartbeat counter of 2**64 reached the JSON column
    and its serializer raised (500). Integers bound for storage are bounded."""
    admin = _bearer(make_token(sqlite_services, Role.ADMIN))
    client = TestClient(app, raise_server_exceptions=False)
    for huge in (2**63, 2**64):
        r = client.post(
            "/api/v1/sensors/heartbeat",
            headers=admin,
            json={"observer": "edge-1", "counters": {"packets": huge}},
        )
        assert r.status_code == 422, r.text
    ok = {"observer": "edge-1", "counters": {"packets": 2**63 - 1}}
    assert client.post("/api/v1/sensors/heartbeat", headers=admin, json=ok).status_code == 200


def _entity(services: Services) -> str:
    from certification.registry import Registry

    with services.db.transaction() as session:
        if Registry.get(session, "ent-a") is None:
            Registry.add(session, "ent-a", "Entidad A", "central", [], [], "test")
    return "ent-a"


# -- finding 13 (part): names without hidden characters; no unknown keys ----------------

HIDDEN = ["\x00", "\x1b", "\x7f", "\u202e", "\u202a", "\u2066", "\u2069", "\n"]


@pytest.mark.parametrize("char", HIDDEN, ids=[f"U+{ord(c):04X}" for c in HIDDEN])
def test_names_and_titles_refuse_control_and_bidi_characters(
    app: FastAPI, sqlite_services: Services, char: str
) -> None:
    admin = _bearer(make_token(sqlite_services, Role.ADMIN))
    client = TestClient(app, raise_server_exceptions=False)
    name = f"invoice{char}gpj.exe"
    cases = [
        ("POST", "/api/v1/tokens", {"role": "analyst", "name": name}),
        ("POST", "/api/v1/entities", {"id": "ent-b", "name": name, "level": "central"}),
        ("POST", "/api/v1/incidents", {"title": name}),
        ("PUT", "/api/v1/entities/ent-a/contacts", {"contacts": [{"name": name}]}),
    ]
    _entity(sqlite_services)
    for method, path, body in cases:
        r = client.request(method, path, headers=admin, json=body)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert "not allowed" in r.json()["detail"], r.json()
    inc = client.post("/api/v1/incidents", headers=admin, json={"title": "ok"}).json()
    r = client.post(f"/api/v1/incidents/{inc['id']}/tasks", headers=admin, json={"title": name})
    assert r.status_code == 422
    # A file name is a name too (the part written by hand: httpx would escape it).
    body = (
        f'--b0\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\nMZ sample\r\n--b0--\r\n"
    ).encode()
    r = client.post(
        "/api/v1/files",
        headers={**admin, "Content-Type": "multipart/form-data; boundary=b0"},
        content=body,
    )
    assert r.status_code == 422 and "file name" in r.json()["detail"], r.text


def test_free_text_keeps_line_breaks_and_refuses_nul(
    app: FastAPI, sqlite_services: Services
) -> None:
    admin = _bearer(make_token(sqlite_services, Role.ADMIN))
    client = TestClient(app, raise_server_exceptions=False)
    inc = client.post("/api/v1/incidents", headers=admin, json={"title": "t"}).json()
    note = f"/api/v1/incidents/{inc['id']}/notes"
    assert client.post(note, headers=admin, json={"body": "a\n\tb"}).status_code == 201
    assert client.post(note, headers=admin, json={"body": "a\x00b"}).status_code == 422


def test_an_unknown_key_is_refused_and_changes_nothing(
    app: FastAPI, sqlite_services: Services
) -> None:
    """The probe's case: a typo'd key in PUT …/contacts wiped the contacts."""
    admin = _bearer(make_token(sqlite_services, Role.ADMIN))
    client = TestClient(app, raise_server_exceptions=False)
    _entity(sqlite_services)
    url = "/api/v1/entities/ent-a/contacts"
    kept = {"contacts": [{"name": "Ana", "email": "ana@example.org", "phone": ""}]}
    assert client.put(url, headers=admin, json=kept).status_code == 200
    r = client.put(url, headers=admin, json={"contact": [{"name": "Typo"}]})
    assert r.status_code == 422 and "contact" in r.json()["detail"]
    assert client.get(url, headers=admin).json()["contacts"] == kept["contacts"]


# Sensor-to-centre messages keep accepting keys they do not know: a fleet is not
# upgraded at once, and a newer sensor's extra counter must not stop its reports.
EXTRA_ALLOWED = {"BatchEnvelope", "HeartbeatIn"}


def test_every_request_model_forbids_unknown_keys(app: FastAPI) -> None:
    def models(dependant: Dependant) -> Iterator[type[BaseModel]]:
        for p in dependant.body_params:
            t = p.field_info.annotation
            if isinstance(t, type) and issubclass(t, BaseModel):
                yield t
        for sub in dependant.dependencies:
            yield from models(sub)
            if isinstance(sub.call, type) and issubclass(sub.call, BaseModel):
                yield sub.call

    def nested(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
        yield model
        for f in model.model_fields.values():
            for arg in (f.annotation, *getattr(f.annotation, "__args__", ())):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    yield from nested(arg)

    found = {m for r in _routes(app.routes) for top in models(r.dependant) for m in nested(top)}
    assert {"NoteIn", "ContactsIn", "Contact", "IncidentUpdate"} <= {m.__name__ for m in found}
    lax = {m.__name__ for m in found if m.model_config.get("extra") != "forbid"}
    assert lax <= EXTRA_ALLOWED, lax - EXTRA_ALLOWED


def test_the_registry_refuses_hidden_characters_from_the_cli_and_the_csv_import(
    sqlite_services: Services,
) -> None:
    """The CLI and the CSV import reach the registry without the API's models: the
    registry checks names itself, and a bad CSV row is refused while the good ones land."""
    from certification.registry import EntityError, Registry
    from certification.registry_csv import import_csv

    with sqlite_services.db.transaction() as s:
        with pytest.raises(EntityError) as refused:
            Registry.add(s, "ent-x", "Ministerio\u202eX", "central", [], [], "cli")
        assert refused.value.code == "entity.name_invalid" and "U+202E" in str(refused.value)
        text = "id,name,level\nent-y,Ministerio Y,central\nent-z,Z\x1bZ,central\n"
        result = import_csv(s, text, "csv")
    assert result.added == 1 and len(result.rejected) == 1
    assert result.rejected[0].startswith("line 3:") and "U+001B" in result.rejected[0]
    with sqlite_services.db.transaction(write=False) as s:
        assert [e.id for e in Registry.all(s)] == ["ent-y"]
