"""Shared fixtures: corpora, settings and services on SQLite (and PostgreSQL when it answers)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from vigia.core.settings import load_settings
from vigia.core.tokens import Role
from vigia.wiring import Services, build

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"
DATA = Path(__file__).parent / "data"
PG_ADMIN_URL = os.environ.get("VIGIA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend: SQLite always, PostgreSQL when it answers."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vigia.db'}"
        return
    if not _pg_answers():
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    import sqlalchemy as sa

    name = f"vigia_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL refused: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


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
