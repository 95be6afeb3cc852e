"""Evidence files: checked against the size and type limits, stored once by their
SHA-256 under the data dir (the same file twice is kept once)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from certification.errors import CertError

# Magic numbers of the types we accept, so that a declared type is believed only
# when the bytes agree (a PDF says %PDF, a ZIP-based office file PK…).
_MAGIC = {
    "application/pdf": (b"%PDF",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/zip": (b"PK\x03\x04",),
}
_ZIPPED = ("application/vnd.openxmlformats", "application/vnd.oasis.opendocument")


def check(data: bytes, media_type: str, allowed: list[str], max_bytes: int) -> None:
    if len(data) == 0:
        raise CertError("evidence.empty")
    if len(data) > max_bytes:
        raise CertError("evidence.too_large", max_bytes=max_bytes)
    if media_type not in allowed:
        raise CertError("evidence.type_refused", media_type=media_type, allowed=", ".join(allowed))
    magic = _MAGIC.get(media_type) or (
        _MAGIC["application/zip"] if media_type.startswith(_ZIPPED) else None
    )
    if magic and not data.startswith(magic):
        raise CertError("evidence.content_mismatch", media_type=media_type)
    if media_type.startswith("text/"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise CertError("evidence.not_utf8", media_type=media_type) from None


def path_of(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256


def put(root: Path, data: bytes) -> str:
    """Store the bytes (atomically, once) and return their SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    target = path_of(root, digest)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    return digest
