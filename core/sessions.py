"""Console sessions: the browser holds a random id, the database only its hash.

A person logs in with an API token once; the console then works on a session
that ends after a quiet spell (idle), after a fixed time whatever happens
(absolute), at logout, and as soon as the token it came from is revoked. Each
session carries its own CSRF token (a synchronizer token) for the console's
forms. Rows live in the database so every replica behind a balancer sees the
same sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, Text, delete, or_, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, UtcDateTime
from core.tokens import Principal, Role, TokenRow

# A session's last-seen time is written at most this often: the idle clock is
# that coarse, and a page view is not a database write.
TOUCH_EVERY = timedelta(seconds=60)


class ConsoleSessionRow(Base):
    __tablename__ = "console_sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[str] = mapped_column(String(32), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Opened through single sign-on: the provider and its ID token, which the
    # logout sends back to the provider (id_token_hint) to end the person's session there.
    sso_issuer: Mapped[str | None] = mapped_column(String(300), nullable=True)
    id_token: Mapped[str | None] = mapped_column(Text(), nullable=True)


@dataclass(frozen=True)
class Lifetimes:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class ConsoleSession:
    """A live session: who it is, its CSRF token, and whether to refresh its clock."""

    principal: Principal
    csrf: str
    digest: str
    needs_touch: bool


def digest(session_id: str) -> str:
    # 256 random bits: a plain hash is enough to make a stolen row useless.
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(
    db_session: Session,
    principal: Principal,
    now: datetime,
    sso: tuple[str, str] | None = None,
) -> str:
    """A new session for this token; returns the id for the cookie (never stored).
    `sso`: the provider's issuer and the ID token, for a login through single sign-on."""
    session_id = secrets.token_urlsafe(32)
    db_session.add(
        ConsoleSessionRow(
            digest=digest(session_id),
            token_id=principal.token_id,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            seen_at=now,
            sso_issuer=sso[0] if sso else None,
            id_token=sso[1] if sso else None,
        )
    )
    return session_id


def sso_of(db_session: Session, session_id: str) -> tuple[str, str] | None:
    """The provider's issuer and ID token of a session opened through single sign-on."""
    row = db_session.get(ConsoleSessionRow, digest(session_id))
    if row is None or not row.sso_issuer or not row.id_token:
        return None
    return row.sso_issuer, row.id_token


def lookup(
    db_session: Session, session_id: str, lifetimes: Lifetimes, now: datetime
) -> ConsoleSession | None:
    row = db_session.get(ConsoleSessionRow, digest(session_id))
    if row is None or row.revoked_at is not None:
        return None
    if now - row.seen_at > lifetimes.idle or now - row.created_at > lifetimes.absolute:
        return None
    token = db_session.get(TokenRow, row.token_id)
    if token is None or token.revoked_at is not None:  # the token's revocation ends it
        return None
    principal = Principal(token.id, token.name, Role(token.role), token.entity_id)
    return ConsoleSession(principal, row.csrf, row.digest, now - row.seen_at > TOUCH_EVERY)


def csrf_matches(expected: str, given: str) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def touch(db_session: Session, session_digest: str, now: datetime) -> None:
    db_session.execute(
        update(ConsoleSessionRow)
        .where(ConsoleSessionRow.digest == session_digest)
        .values(seen_at=now)
    )


def revoke(db_session: Session, session_id: str, now: datetime) -> bool:
    done = db_session.execute(
        update(ConsoleSessionRow)
        .where(ConsoleSessionRow.digest == digest(session_id))
        .where(ConsoleSessionRow.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def purge(db_session: Session, lifetimes: Lifetimes, now: datetime) -> None:
    """Forget sessions that can no longer be used (run at each login; cheap)."""
    db_session.execute(
        delete(ConsoleSessionRow).where(
            or_(
                ConsoleSessionRow.revoked_at.is_not(None),
                ConsoleSessionRow.created_at < now - lifetimes.absolute,
                ConsoleSessionRow.seen_at < now - lifetimes.idle,
            )
        )
    )
