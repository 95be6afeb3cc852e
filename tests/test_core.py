"""Settings, migrations, tokens and the hash-chained audit log (on SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import certification.models
import certification.registry
import core.leases
import core.sessions
import core.throttle
import correlator.fleet
import correlator.sightings
import correlator.sources
import correlator.store
import incidents.digest
import incidents.models
import incidents.prefs
import incidents.reports.models
from core import audit
from core.db import Base
from core.settings import Settings, SettingsError, ensure_secret, load_settings
from core.tokens import Role, TokenError
from tests.vigia_cli import in_process
from vigia.wiring import Services

# Imported so that their tables join Base.metadata before migrations are compared.
assert correlator.store and correlator.fleet and correlator.sightings and correlator.sources
assert certification.registry and certification.models and incidents.models
assert core.leases and core.sessions and core.throttle


# -- settings -------------------------------------------------------------


@pytest.mark.parametrize("secret", ["changeme", "secret", "short-but-not-default"])
def test_settings_refuse_default_or_weak_secrets(secret: str) -> None:
    with pytest.raises(SettingsError, match="VIGIA_SECRET_KEY"):
        load_settings(secret_key=secret)


def test_settings_from_env_and_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "vigia.toml"
    cfg.write_text(f'[vigia]\ndata_dir = "{tmp_path / "d"}"\nport = 9001\n')
    monkeypatch.setenv("VIGIA_CONFIG", str(cfg))
    monkeypatch.setenv("VIGIA_PORT", "9002")  # the environment wins over the file
    s = load_settings()
    assert s.data_dir == tmp_path / "d" and s.port == 9002
    assert s.effective_database_url == f"sqlite:///{(tmp_path / 'd' / 'vigia.db').resolve()}"
    monkeypatch.setenv("VIGIA_DATABASE_URL", "postgresql+psycopg://x@127.0.0.1/db")
    assert load_settings().effective_database_url.startswith("postgresql")
    monkeypatch.setenv("VIGIA_PORT", "99999")
    with pytest.raises(SettingsError, match="VIGIA_PORT"):
        load_settings()


def test_bad_config_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("port = = 3\n")
    monkeypatch.setenv("VIGIA_CONFIG", str(cfg))
    with pytest.raises(SettingsError, match=r"bad\.toml: invalid TOML"):
        load_settings()


def test_generated_secret_is_private_and_stable(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    first = ensure_secret(s)
    assert len(first) == 64 and ensure_secret(s) == first
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600


# -- migrations -----------------------------------------------------------


def test_migrations_match_the_models(services: Services) -> None:
    with services.db.engine.connect() as conn:
        dialect = conn.dialect.name

        def here(obj: object, name: str | None, kind: str, reflected: bool, _: object) -> bool:
            # An index made for one dialect only (Index.ddl_if) is not wanted on the others.
            only = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
            return only is None or only == dialect

        ctx = MigrationContext.configure(conn, opts={"include_object": here})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
    tables = set(sa.inspect(services.db.engine).get_table_names())
    assert {
        "alerts",
        "audit_log",
        "audit_head",
        "tokens",
        "entities",
        "indicators",
        "observations",
        "ingest_batches",
        "sensors",
        "sightings_outbox",
        "indicator_sources",
        "alembic_version",
    } <= tables


def test_a_database_at_the_head_is_left_alone_and_one_behind_is_upgraded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start on a database already at the head reads one row and does not import or
    run Alembic; one revision behind, Alembic takes it to the head."""
    from alembic import command

    from core import migrate

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate.upgrade(engine)  # new: through Alembic
    head = migrate.head()
    assert head is not None and migrate.at_head(engine)
    ran: list[str] = []
    real = command.upgrade

    def counted(cfg: object, rev: str) -> None:
        ran.append(rev)
        real(cfg, rev)  # type: ignore[arg-type]

    monkeypatch.setattr(command, "upgrade", counted)
    migrate.upgrade(engine)
    assert ran == []
    cfg = migrate.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "-1")
    assert not migrate.at_head(engine)
    migrate.upgrade(engine)
    assert ran == ["head"] and migrate.at_head(engine)
    engine.dispose()


def test_sqlite_runs_in_wal_mode(sqlite_services: Services) -> None:
    with sqlite_services.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


# -- tokens ---------------------------------------------------------------


def test_tokens_are_random_hashed_and_scoped(services: Services) -> None:
    with services.db.transaction() as s:
        token, row = services.tokens.create(s, Role.AUDITOR, "aud", None, "test")
        assert token.startswith("vga_") and len(token) > 40
        assert token not in row.digest and len(row.digest) == 64
        with pytest.raises(TokenError):
            services.tokens.create(s, Role.ENTITY, "e", None, "test")
        with pytest.raises(TokenError):
            services.tokens.create(s, Role.ANALYST, "a", "ent-a", "test")
    with services.db.transaction(write=False) as s:
        p = services.tokens.authenticate(s, token)
        assert p is not None and p.role is Role.AUDITOR
        assert services.tokens.authenticate(s, token + "x") is None


# -- audit ----------------------------------------------------------------


def _fill(services: Services, n: int) -> None:
    for i in range(n):
        with services.db.transaction() as s:
            audit.append(s, "test", "thing.change", "thing", str(i), {"i": i, "é": "ñ"})


def test_audit_chain_verifies(services: Services) -> None:
    _fill(services, 5)
    with services.db.transaction(write=False) as s:
        v = audit.verify(s)
    assert v.ok and v.records == 5


@pytest.mark.parametrize("tamper", ["modify", "delete-middle", "delete-last", "reorder"])
def test_audit_detects_tampering(services: Services, tamper: str) -> None:
    _fill(services, 5)
    t = audit.AuditRecord.__table__
    with services.db.engine.begin() as conn:
        if tamper == "modify":
            conn.execute(t.update().where(t.c.seq == 3).values(actor="mallory"))
        elif tamper == "delete-middle":
            conn.execute(t.delete().where(t.c.seq == 2))
        elif tamper == "delete-last":
            conn.execute(t.delete().where(t.c.seq == 5))
        else:
            conn.execute(t.update().where(t.c.seq == 4).values(detail={"i": 99}))
    with services.db.transaction(write=False) as s:
        v = audit.verify(s)
    assert not v.ok
    assert {
        "modify": "record 3 was modified",
        "delete-middle": "record 2 is missing (next is 3)",
        "delete-last": "records after 4 are missing (chain head is 5)",
        "reorder": "record 4 was modified",
    }[tamper] == v.problem


def test_batched_appends_chain_each_change_in_order(services: Services) -> None:
    """Records appended inside `audit.batched` are written when the block ends, each
    its own link of the one chain, in the order made; a nested block writes with the
    outer one, and a block left by an exception writes none."""
    _fill(services, 2)
    with services.db.transaction() as s, audit.batched(s):
        audit.append(s, "test", "thing.open", "thing", "a", {"n": 1})
        with audit.batched(s):
            audit.append(s, "test", "thing.notify", "thing", "a", {"n": 2})
        assert s.query(audit.AuditRecord).count() == 2  # held back until the end
        audit.append(s, "test", "thing.close", "thing", "a", {"n": 3})
    with pytest.raises(RuntimeError), services.db.transaction() as s, audit.batched(s):
        audit.append(s, "test", "thing.lost", "thing", "b")
        raise RuntimeError("rolled back")
    _fill(services, 1)
    with services.db.transaction(write=False) as s:
        v = audit.verify(s)
        rows = s.query(audit.AuditRecord).order_by(audit.AuditRecord.seq).all()
    assert v.ok and v.records == 6
    assert [(r.seq, r.action) for r in rows][2:] == [
        (3, "thing.open"),
        (4, "thing.notify"),
        (5, "thing.close"),
        (6, "thing.change"),
    ]
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]


def test_concurrent_appends_keep_one_chain(services: Services) -> None:
    import threading

    def work() -> None:
        _fill(services, 10)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    with services.db.transaction(write=False) as s:
        v = audit.verify(s)
    assert v.ok and v.records == 40


# -- the command line over the same store ---------------------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIA_DATA_DIR": str(tmp_path / "data")}
    env.pop("VIGIA_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "vigia", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_cli_token_entity_and_audit_verify(tmp_path: Path) -> None:
    """`vigia token create` and the broken `vigia audit verify` run as real processes
    (stdout the token alone; exit 1), the other verbs in this one (tests/vigia_cli.py)."""
    data = tmp_path / "data"
    r = in_process(
        data, "entity", "add", "min-x", "--name", "Ministerio X", "--network", "10.5.0.0/16"
    )
    assert r.returncode == 0, r.stderr
    r = _cli(tmp_path, "token", "create", "--role", "entity", "--entity", "min-x")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("vga_") and r.stdout.count("\n") == 1  # the token alone
    bad = in_process(data, "token", "create", "--role", "root")
    assert bad.returncode == 2 and "unknown role" in bad.stderr and "Traceback" not in bad.stderr
    bad = in_process(data, "token", "create", "--role", "entity", "--entity", "nope")
    assert bad.returncode == 2 and "no entity" in bad.stderr
    ok = in_process(data, "audit", "verify")
    assert ok.returncode == 0 and "2 records" in ok.stdout
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'vigia.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET detail = '{}' WHERE seq = 1")
    engine.dispose()
    broken = _cli(tmp_path, "audit", "verify")
    assert broken.returncode == 1 and "record 1 was modified" in broken.stderr


def test_cli_refuses_default_secret(tmp_path: Path) -> None:
    env_secret = {"VIGIA_SECRET_KEY": "changeme"}
    r = subprocess.run(
        [sys.executable, "-m", "vigia", "audit", "verify"],
        capture_output=True,
        text=True,
        env={**os.environ, **env_secret, "VIGIA_DATA_DIR": str(tmp_path)},
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "vigia: VIGIA_SECRET_KEY: Value error, is a well-known default; "
        "generate one with `openssl rand -hex 32`"
    )
