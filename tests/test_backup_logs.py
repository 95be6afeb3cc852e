"""`vigia backup` / `vigia restore` of the embedded store, and JSON logs."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from core import logs
from tests.vigia_cli import in_process


def _vigia(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIA_DATA_DIR": str(data)}
    env.pop("VIGIA_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "vigia", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_backup_and_restore_round_trip(tmp_path: Path) -> None:
    """`vigia backup` and `vigia restore` run as real processes; the verbs around them
    (setting up, reading back, the refusals) in this one (tests/vigia_cli.py)."""
    data, back = tmp_path / "data", tmp_path / "restored"
    assert in_process(data, "entity", "add", "min-x", "--name", "Ministerio X").returncode == 0
    token = in_process(data, "token", "create", "--role", "analyst").stdout.strip()
    (data / "evidence" / "ab").mkdir(parents=True)
    (data / "evidence" / "ab" / "abcd").write_bytes(b"%PDF-1.4 evidencia")
    out = tmp_path / "vigia-backup.tar.gz"
    r = _vigia(data, "backup", str(out))
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {"vigia.db", "secret_key", "manifest.json", "evidence/ab/abcd"} <= names
    r = _vigia(back, "restore", str(out))
    assert r.returncode == 0 and "audit chain intact" in r.stderr, r.stderr
    listed = in_process(back, "entity", "list").stdout
    assert listed.startswith("min-x\tcentral\tMinisterio X")
    assert (back / "evidence" / "ab" / "abcd").read_bytes() == b"%PDF-1.4 evidencia"
    assert (back / "secret_key").read_text() == (data / "secret_key").read_text()
    # The restored secret still recognises the tokens made before the backup.
    from core.settings import load_settings
    from vigia.wiring import build

    services = build(load_settings(data_dir=back))
    with services.db.transaction(write=False) as s:
        assert services.tokens.authenticate(s, token) is not None
    services.close()
    # Refusals: over an existing database, a file that is not a backup, PostgreSQL.
    again = in_process(back, "restore", str(out))
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr
    junk = tmp_path / "junk.tar.gz"
    with tarfile.open(junk, "w:gz") as tar:
        blob = b"hola"
        info = tarfile.TarInfo("readme.txt")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    bad = in_process(tmp_path / "empty", "restore", str(junk))
    assert bad.returncode == 2 and "not a Vigía backup" in bad.stderr
    pg = in_process(
        data,
        "backup",
        str(tmp_path / "pg.tar.gz"),
        VIGIA_DATABASE_URL="postgresql+psycopg://x@127.0.0.1/y",
    )
    assert pg.returncode == 2 and "pg_dump" in pg.stderr


def test_json_logs_one_object_per_line() -> None:
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    try:
        log = logging.getLogger("vigia.test")
        log.warning("lote %s rechazado", "b-1", extra={"batch_id": "b-1"})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("falló")
    finally:
        logging.getLogger().handlers[:] = []
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "lote b-1 rechazado" and first["log.level"] == "warning"
    assert first["batch_id"] == "b-1" and first["@timestamp"].endswith("Z")
    assert (
        second["log.logger"] == "vigia.test" and "ValueError: boom" in second["error.stack_trace"]
    )
