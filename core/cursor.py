"""Keyset cursors: the (time, id) of the last row a page returned, opaque to clients.

The alert and incident searches page the same way, newest first; one
encoding serves both, and a cursor that is not one of ours is a CursorError.
"""

from __future__ import annotations

import base64
from datetime import datetime


class CursorError(ValueError):
    """A cursor this API did not give out."""


def encode_cursor(ts: datetime, key: str | int) -> str:
    return base64.urlsafe_b64encode(f"{ts.isoformat()}|{key}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(time, key as text); the caller converts the key to its own type."""
    try:
        ts_text, key = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(ts_text.replace("Z", "+00:00")), key
    except (ValueError, UnicodeDecodeError):
        raise CursorError("invalid cursor") from None
