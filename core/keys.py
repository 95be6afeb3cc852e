"""Keys derived from the installation's secret, kept out of the database.

The secret (`VIGIA_SECRET_KEY`, or the data dir's `secret_key` file) never goes
into the database; from it come, by purpose, the audit chain's HMAC key and the
key that seals secrets the centre must keep in clear to use them (an entity's
webhook signing secret). A copy of the database alone therefore can neither
forge audit records nor read those secrets.

The keys ride on the engine's execution options (installed once by the
composition root), so every session of that engine finds them and two
installations in one process (the tests) never mix keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine
from sqlalchemy.orm import Session

OPTION = "vigia_keys"
SEALED_PREFIX = "enc1:"  # AES-256-GCM, nonce ‖ ciphertext ‖ tag, url-safe base64


class KeysError(RuntimeError):
    """The keys are missing (the engine was not built by the wiring) or do not fit."""


def derive(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose: HMAC-SHA256(secret, "vigia/" + purpose)."""
    return hmac.new(secret.encode(), f"vigia/{purpose}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Keys:
    audit: bytes  # HMAC-SHA256 key of the audit chain
    seal: bytes  # AES-256-GCM key for secrets stored in the database

    @classmethod
    def from_secret(cls, secret: str) -> Keys:
        return cls(derive(secret, "audit-chain"), derive(secret, "sealed-secrets"))

    def __repr__(self) -> str:  # never print key material in a traceback or log
        return "Keys(…)"


def install(engine: Engine, keys: Keys) -> None:
    """Every connection of this engine (and its sessions) now carries the keys."""
    engine.update_execution_options(**{OPTION: keys})


def of(session: Session) -> Keys:
    keys = session.connection().get_execution_options().get(OPTION)
    if not isinstance(keys, Keys):
        raise KeysError("no keys on this database: build it through vigia.wiring.build")
    return keys


def seal(session: Session, plaintext: str, context: str) -> str:
    """Encrypt a stored secret; `context` (e.g. the row's id) binds it to its row, so a
    sealed value copied onto another row does not open."""
    if not plaintext:
        return ""
    nonce = os.urandom(12)
    blob = nonce + AESGCM(of(session).seal).encrypt(nonce, plaintext.encode(), context.encode())
    return SEALED_PREFIX + base64.urlsafe_b64encode(blob).decode()


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED_PREFIX)


def unseal(session: Session, stored: str, context: str) -> str:
    """The plaintext of a sealed value; a value stored before sealing existed comes
    back as it is (the wiring seals those at start-up)."""
    if not is_sealed(stored):
        return stored
    try:
        blob = base64.urlsafe_b64decode(stored[len(SEALED_PREFIX) :])
        clear = AESGCM(of(session).seal).decrypt(blob[:12], blob[12:], context.encode())
    except (InvalidTag, ValueError) as exc:
        raise KeysError(
            "a sealed secret does not open with this installation's key "
            "(was VIGIA_SECRET_KEY or the secret_key file changed?)"
        ) from exc
    return clear.decode()
