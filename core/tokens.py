"""Bearer tokens: random, shown once, stored only as a keyed hash, scoped to a role."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import audit
from core.clock import new_id, utcnow
from core.db import Base, UtcDateTime

TOKEN_PREFIX = "vga_"


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    ENTITY = "entity"  # bound to one entity
    SENSOR = "sensor"  # ingest only
    AUDITOR = "auditor"  # read only
    PEER = "peer"  # a peer CERT: reads the TAXII collections for peers, nothing else


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


@dataclass(frozen=True)
class Principal:
    """Who is calling: what the authorisation checks look at."""

    token_id: str
    name: str
    role: Role
    entity_id: str | None

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"


class TokenError(ValueError):
    pass


class TokenService:
    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def digest(self, token: str) -> str:
        # Tokens carry 256 random bits, so a keyed SHA-256 is enough; the key
        # means a stolen database alone cannot confirm a guessed token.
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    def create(
        self, session: Session, role: Role, name: str, entity_id: str | None, actor: str
    ) -> tuple[str, TokenRow]:
        if role is Role.ENTITY and not entity_id:
            raise TokenError("an entity token needs --entity")
        if role is not Role.ENTITY and entity_id:
            raise TokenError("only entity tokens are bound to an entity")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = TokenRow(
            id=new_id(),
            name=name,
            role=role.value,
            entity_id=entity_id,
            digest=self.digest(token),
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        audit.append(
            session,
            actor,
            "token.create",
            "token",
            row.id,
            {"role": role.value, "name": name, "entity_id": entity_id},
        )
        return token, row

    def revoke(self, session: Session, token_id: str, actor: str) -> bool:
        row = session.get(TokenRow, token_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = utcnow()
        audit.append(session, actor, "token.revoke", "token", token_id, {})
        return True

    def authenticate(self, session: Session, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        row = session.execute(
            select(TokenRow).where(TokenRow.digest == self.digest(token))
        ).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        return Principal(row.id, row.name, Role(row.role), row.entity_id)

    @staticmethod
    def count(session: Session) -> int:
        return len(session.execute(select(TokenRow.id)).all())
