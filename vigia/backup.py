"""Backup and restore of the embedded default: one .tar.gz with a consistent copy
of the SQLite database (SQLite's online backup, safe while `vigia up` runs), the
installation's secret, evidence files and local YARA rules, and a manifest."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vigia.core.clock import iso, utcnow

DB = "vigia.db"
EXTRA = ("secret_key", "evidence", "yara")  # what else of the data dir travels


class BackupError(Exception):
    """One line: what cannot be backed up or restored, and why."""


@dataclass(frozen=True)
class Manifest:
    created: str
    database_sha256: str
    files: int


def backup(data_dir: Path, database_url: str, out: Path) -> Manifest:
    if database_url and not database_url.startswith("sqlite"):
        raise BackupError("this backs up the embedded SQLite store; for PostgreSQL use pg_dump")
    db = data_dir / DB
    if not db.exists():
        raise BackupError(f"{db}: no database to back up")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / DB
        src, dst = sqlite3.connect(db), sqlite3.connect(copy)
        try:
            src.backup(dst)  # a consistent snapshot, even with writers at work
        finally:
            src.close()
            dst.close()
        digest = hashlib.sha256(copy.read_bytes()).hexdigest()
        files = 0
        with tarfile.open(out, "w:gz") as tar:
            tar.add(copy, arcname=DB)
            for name in EXTRA:
                p = data_dir / name
                if p.exists():
                    tar.add(p, arcname=name)
                    files += sum(1 for f in p.rglob("*") if f.is_file()) if p.is_dir() else 1
            manifest = Manifest(iso(utcnow()), digest, files)
            blob = json.dumps(manifest.__dict__, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return manifest


def restore(archive: Path, data_dir: Path, force: bool = False) -> Manifest:
    """Unpack a backup into the data dir; refuses to overwrite a database unless forced."""
    if (data_dir / DB).exists() and not force:
        raise BackupError(f"{data_dir / DB} exists; restore into an empty data dir or --force")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            try:
                manifest = Manifest(**json.loads(tar.extractfile("manifest.json").read()))  # type: ignore[union-attr]
            except (KeyError, AttributeError, TypeError, ValueError):
                raise BackupError(f"{archive}: not a Vigía backup (no manifest)") from None
            data_dir.mkdir(parents=True, exist_ok=True)
            for member in tar.getmembers():
                if member.name == "manifest.json":
                    continue
                if member.name.split("/")[0] not in (DB, *EXTRA):
                    raise BackupError(f"{archive}: unexpected entry {member.name!r}")
            tar.extractall(data_dir, filter="data")  # no absolute paths, links or devices
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{archive}: cannot read: {exc}") from None
    got = hashlib.sha256((data_dir / DB).read_bytes()).hexdigest()
    if got != manifest.database_sha256:
        raise BackupError(f"{archive}: the database does not match its manifest (damaged)")
    return manifest
