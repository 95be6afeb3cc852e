"""Files kept for analysts: each once, by SHA-256, under the data directory.

A sensor may send the bytes of the files it extracts (up to its cap); an
analyst may keep a sample. The name is the content's digest, so the same
file sent by a thousand flows is written once; a write goes to a temporary
name and is renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class FileStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"{sha256!r} is not a SHA-256 in hex")
        return self.folder / sha256[:2] / sha256

    def keep(self, data: bytes) -> tuple[str, bool]:
        """Store the bytes; (their SHA-256, whether they were new here)."""
        sha256 = hashlib.sha256(data).hexdigest()
        final = self.path(sha256)
        if final.exists():
            return sha256, False
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = final.with_name(f".{sha256}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(final)
        return sha256, True

    def find(self, sha256: str) -> Path | None:
        try:
            p = self.path(sha256.lower())
        except ValueError:
            return None
        return p if p.is_file() else None
