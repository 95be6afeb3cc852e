"""Backup and restore of the embedded default: one .tar.gz with a consistent copy
of the SQLite database (SQLite's online backup, safe while `vigia up` runs), the
installation's secret, evidence files and local YARA rules, and a manifest.

The archive holds the secret, so it is written 0600 like the data dir's files.
A restore unpacks into a staging folder beside the data dir, checks everything
there (the manifest, the database's digest, the audit chain under the restored
secret), and only then moves the files into place: a refused restore leaves the
data dir as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core import private
from core.clock import iso, utcnow

DB = "vigia.db"
EXTRA = ("secret_key", "evidence", "yara")  # what else of the data dir travels
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")  # an old WAL must not replay onto a restore


class BackupError(Exception):
    """One line: what cannot be backed up or restored, and why."""


@dataclass(frozen=True)
class Manifest:
    created: str
    database_sha256: str
    files: int


def _private_member(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mode = private.DIR_MODE if info.isdir() else private.FILE_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


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
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, private.FILE_MODE)
        except OSError as exc:
            raise BackupError(f"{out}: cannot write: {exc.strerror}") from None
        os.fchmod(fd, private.FILE_MODE)  # an existing file keeps its mode otherwise
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            tar.add(copy, arcname=DB, filter=_private_member)
            for name in EXTRA:
                p = data_dir / name
                if p.exists():
                    tar.add(p, arcname=name, filter=_private_member)
                    files += sum(1 for f in p.rglob("*") if f.is_file()) if p.is_dir() else 1
            manifest = Manifest(iso(utcnow()), digest, files)
            blob = json.dumps(manifest.__dict__, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(blob)
            tar.addfile(_private_member(info), io.BytesIO(blob))
    return manifest


def restore(
    archive: Path, data_dir: Path, force: bool = False, configured_secret: str = ""
) -> Manifest:
    """Unpack a backup into the data dir; refuses to overwrite a database unless forced.
    Nothing lands in the data dir unless every check passed."""
    if (data_dir / DB).exists() and not force:
        raise BackupError(f"{data_dir / DB} exists; restore into an empty data dir or --force")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restore-", dir=data_dir.parent))
    try:
        manifest = _unpack(archive, staging)
        got = hashlib.sha256((staging / DB).read_bytes()).hexdigest()
        if got != manifest.database_sha256:
            raise BackupError(f"{archive}: the database does not match its manifest (damaged)")
        _check_chain(archive, staging, configured_secret or _secret_of(staging, data_dir))
        _move_into_place(staging, data_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _unpack(archive: Path, staging: Path) -> Manifest:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            try:
                manifest = Manifest(**json.loads(tar.extractfile("manifest.json").read()))  # type: ignore[union-attr]
            except (KeyError, AttributeError, TypeError, ValueError):
                raise BackupError(f"{archive}: not a Vigía backup (no manifest)") from None
            members = [m for m in tar.getmembers() if m.name != "manifest.json"]
            for member in members:
                if member.name.split("/")[0] not in (DB, *EXTRA):
                    raise BackupError(f"{archive}: unexpected entry {member.name!r}")
            if DB not in {m.name for m in members}:
                raise BackupError(f"{archive}: no database in the backup")
            # no absolute paths, links or devices
            tar.extractall(staging, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{archive}: cannot read: {exc}") from None
    return manifest


def _secret_of(staging: Path, data_dir: Path) -> str:
    for p in (staging / "secret_key", data_dir / "secret_key"):
        if p.is_file():
            return p.read_text().strip()
    return ""


def _check_chain(archive: Path, staging: Path, secret: str) -> None:
    """The restored audit chain, verified under the secret it will run with."""
    from sqlalchemy.exc import SQLAlchemyError

    from core import audit, keys
    from core.db import Database

    if not secret:
        raise BackupError(
            f"{archive}: no secret_key in the backup and no VIGIA_SECRET_KEY: "
            "the audit chain cannot be checked"
        )
    db = Database(f"sqlite:///{staging / DB}")
    try:
        keys.install(db.engine, keys.Keys.from_secret(secret))
        with db.transaction(write=False) as session:
            verdict = audit.verify(session, allow_unkeyed=True)  # sealed at first start
    except SQLAlchemyError as exc:
        raise BackupError(f"{archive}: the database does not open: {exc}") from None
    finally:
        db.dispose()
    if not verdict.ok:
        raise BackupError(f"{archive}: refused, the audit chain is broken: {verdict.problem}")


def _move_into_place(staging: Path, data_dir: Path) -> None:
    private.private_dir(data_dir)
    for suffix in SQLITE_COMPANIONS:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / (DB + suffix)).unlink()
    for name in (*EXTRA, DB):  # the database last: it marks a finished restore
        src = staging / name
        if not src.exists():
            continue
        _tighten(src)
        dst = data_dir / name
        if dst.is_dir() and not dst.is_symlink():
            aside = staging / f"{name}.old"
            os.replace(dst, aside)
        os.replace(src, dst)


def _tighten(path: Path) -> None:
    if path.is_dir():
        os.chmod(path, private.DIR_MODE)
        for p in path.rglob("*"):
            os.chmod(p, private.DIR_MODE if p.is_dir() else private.FILE_MODE)
    else:
        os.chmod(path, private.FILE_MODE)
