"""The data dir is private: 0700, its files 0600.

It holds the database (tokens' digests, sealed secrets, the audit chain), the
installation's secret and evidence files; nobody but the service's own user has
business reading them. SQLite creates its -wal and -shm files with the mode of
the database file, so a database created 0600 keeps its companions 0600 too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077  # what a server process sets, so every file it writes is private


def private_dir(path: Path) -> None:
    """Create the folder 0700 (or tighten it to 0700 if it exists)."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create an empty file 0600 if absent (before SQLite opens it), or tighten it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.close(fd)
    except FileExistsError:
        os.chmod(path, FILE_MODE)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases or an in-memory one."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(rest) if rest and rest != ":memory:" else None


def private_sqlite(url: str) -> None:
    """The database file and its WAL/SHM companions, 0600."""
    db = sqlite_path(url)
    if db is None:
        return
    private_file(db)
    for extra in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(db.with_name(db.name + extra), FILE_MODE)
