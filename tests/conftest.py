"""Shared fixtures: corpora, settings and services on SQLite (and PostgreSQL when it answers)."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import load_settings
from core.tokens import Role
from tests import openapi_check
from tests.centre import free_port
from vigia.wiring import Services, build

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"
DATA = Path(__file__).parent / "data"
PG_ADMIN_URL = os.environ.get("VIGIA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session", autouse=True)
def one_warninglists_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The compiled MISP warninglists (seconds of CPU) made once per run, not once per
    data dir: every centre of the run, in process or started as one, shares the cache."""
    held = os.environ.get("VIGIA_CACHE_DIR")
    if held is None:
        # Under xdist the workers' temporary folders share a parent: one cache for the
        # run (rules.warninglists compiles under a file lock, so once).
        base = tmp_path_factory.getbasetemp()
        shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
        (shared / "vigia-cache").mkdir(exist_ok=True)
        os.environ["VIGIA_CACHE_DIR"] = str(shared / "vigia-cache")
    marker = f"VIGIA_TEST_RUN={uuid.uuid4().hex}"
    os.environ["VIGIA_TEST_RUN"] = marker.split("=", 1)[1]
    yield
    if held is None:
        os.environ.pop("VIGIA_CACHE_DIR", None)
    left = _processes_left(marker.encode())
    for pid, _cmd in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes started by the tests outlived them: {left}"


def _processes_left(marker: bytes, grace_s: float = 5.0) -> list[tuple[int, str]]:
    """Processes other than this one whose environment carries this run's marker: every
    process a test starts inherits it, so one still alive after the run was not stopped."""
    deadline = time.monotonic() + grace_s
    while True:
        left = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if marker not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue  # gone, or not ours to read
            left.append((int(entry.name), cmd[:200]))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def answers_keep_the_openapi_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each answer a TestClient gets is checked against the app's OpenAPI document
    (tests/openapi_check.py): an answer that breaks it fails the test that made it."""
    openapi_check.install(monkeypatch)


def _cpu_s() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Each test's CPU (setup to teardown, its servers included once stopped), carried
    on its teardown report: wall time misleads on a shared 2-core machine, CPU does not."""
    if call.when == "setup":
        item.stash[_CPU_AT_START] = _cpu_s()
    elif call.when == "teardown" and _CPU_AT_START in item.stash:
        item.user_properties.append(("cpu_s", _cpu_s() - item.stash[_CPU_AT_START]))
    yield


_CPU_AT_START = pytest.StashKey[float]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    s = openapi_check.STATS
    if s["responses"]:
        terminalreporter.write_line(
            f"openapi: {s['responses']} answers checked, {s['validated']} JSON bodies validated"
        )
    cpu = [
        (dict(r.user_properties)["cpu_s"], r.nodeid)
        for reports in terminalreporter.stats.values()
        for r in reports
        if getattr(r, "when", None) == "teardown"
        and "cpu_s" in dict(getattr(r, "user_properties", ()))
    ]
    if cpu:  # the suite must stay well under 15 min: where its CPU goes, every run
        cpu.sort(reverse=True)
        terminalreporter.write_sep(
            "=", f"CPU: {sum(c for c, _ in cpu):.0f} s in all; the 25 heaviest"
        )
        for c, nodeid in cpu[:25]:
            terminalreporter.write_line(f"{c:7.1f}s  {nodeid}")


def corpus(*parts: str) -> Path:
    p = CORPORA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"corpus not available: {p}")
    return p


def _pg_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _pg_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A PostgreSQL database of its own (a copy of `template` when named), dropped,
    connections and all, when done."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"{copy}')
        yield name
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head (alembic, from empty) once per test
    process, each xdist worker its own: the tests' databases are copies of it
    (CREATE DATABASE ... TEMPLATE), not each migrated again (~0.2 s of this process's
    CPU and more of the server's, for every PostgreSQL test). Dropped at the end."""
    from core import migrate
    from core.db import Database

    with _pg_database("vigia_tpl") as name:
        db = Database(_pg_url(name))
        try:
            migrate.upgrade(db.engine)
        finally:
            db.dispose()  # no connection left on it: a template must have none
        yield name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database file migrated to head (alembic, from empty) once per test
    process: the tests' SQLite databases are copies of it (~0.1 s of CPU less each)."""
    from core import migrate
    from core.db import Database

    path = tmp_path_factory.mktemp("sqlite-template") / "vigia.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate.upgrade(db.engine)
    finally:
        db.dispose()  # the last connection closed: the WAL is back in the file
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on each backend, SQLite always and PostgreSQL when it answers:
    a copy of the run's migrated template (no other data, the same schema)."""
    if request.param == "sqlite":
        path = tmp_path / "vigia.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    if not _pg_answers():
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    import sqlalchemy as sa

    template = request.getfixturevalue("pg_template")
    with contextlib.ExitStack() as stack:
        try:
            name = stack.enter_context(_pg_database("vigia_t", template))
        except sa.exc.OperationalError as exc:
            pytest.skip(f"PostgreSQL refused: {exc}")
        yield _pg_url(name)


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Iterator[Services]:
    s = build(load_settings(data_dir=tmp_path / "data", database_url=db_url, dedup_window_s=3600))
    yield s
    s.close()


@pytest.fixture
def sqlite_services(tmp_path: Path) -> Iterator[Services]:
    s = build(load_settings(data_dir=tmp_path / "data", database_url=""))
    yield s
    s.close()


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services))


def make_token(
    services: Services, role: Role, entity: str | None = None, name: str | None = None
) -> str:
    with services.db.transaction() as session:
        token, _ = services.tokens.create(session, role, name or role.value, entity, "test")
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def pg_db() -> Iterator[str]:
    if not _pg_answers():
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    with _pg_database("vigia_ops") as name:
        yield name


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright (no browser download): one per
    module, a launch being about a second of CPU. Tests take it through their module's
    `browser` fixture (tests/test_console_browser.py), which closes what each opened."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(executable):
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=executable,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def es_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("VIGIA_ELASTICSEARCH_URL"):
        yield os.environ["VIGIA_ELASTICSEARCH_URL"]
        return
    binary = shutil.which("noida-db") or str(Path(sys.executable).parent / "noida-db")
    if not Path(binary).exists():
        pytest.skip("noida-db is not installed")
    port = free_port()
    data = tmp_path_factory.mktemp("noida")
    proc = subprocess.Popen(
        [
            binary,
            "start",
            "--only",
            "elasticsearch",
            "--elasticsearch-port",
            str(port),
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the pip wrapper runs the server as its child: stop both
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip("noida-db did not start")
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
