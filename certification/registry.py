"""The entity registry: the CERT's constituency, with each entity's networks and domains.

Also the address/domain → entity lookup that names the affected entity on
alerts; the composition root hands it to the correlator, which never imports
this package.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytricia
from sqlalchemy import JSON, Boolean, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from certification.errors import CertError
from core import audit, keys, names
from core.clock import utcnow
from core.db import Base, UtcDateTime
from core.netguard import TargetError, TargetPolicy

LEVELS = (
    "central",
    "departmental",
    "municipal",
    "indigenous",
    "legislative",
    "judicial",
    "electoral",
    "state_company",
    "university",
    "other",
)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class EntityError(CertError):
    """The registry refuses an entity's data: 422."""


class EntityRow(Base):
    __tablename__ = "entities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    level: Mapped[str] = mapped_column(String(30))
    networks: Mapped[list[str]] = mapped_column(JSON)
    domains: Mapped[list[str]] = mapped_column(JSON)
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Inactive entities (merged, dissolved) leave the national target's denominator.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Security officers: [{"name", "email", "phone"}]; the first e-mail gets notifications.
    contacts: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    webhook_url: Mapped[str] = mapped_column(String(500), default="")
    # The centre signs with it, so it cannot be stored as a hash: it is sealed
    # (AES-GCM, core.keys) with a key that is not in the database.
    webhook_secret: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


@dataclass(frozen=True)
class EntityInfo:
    id: str
    name: str
    level: str
    networks: tuple[str, ...]
    domains: tuple[str, ...]


class Registry:
    @staticmethod
    def add(
        session: Session,
        entity_id: str,
        name: str,
        level: str,
        networks: list[str],
        domains: list[str],
        actor: str,
    ) -> EntityInfo:
        if not _SLUG.match(entity_id):
            raise EntityError("entity.id_invalid", entity_id=entity_id)
        nets, doms = _clean(name, level, networks, domains)
        if session.get(EntityRow, entity_id) is not None:
            raise EntityError("entity.exists", entity_id=entity_id)
        now = utcnow()
        session.add(
            EntityRow(
                id=entity_id,
                name=name.strip(),
                level=level,
                networks=nets,
                domains=doms,
                contacts=[],
                active=True,
                webhook_url="",
                webhook_secret="",
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        audit.append(
            session,
            actor,
            "entity.create",
            "entity",
            entity_id,
            {"name": name, "level": level, "networks": nets, "domains": doms},
        )
        return EntityInfo(entity_id, name.strip(), level, tuple(nets), tuple(doms))

    @staticmethod
    def get(session: Session, entity_id: str) -> EntityInfo | None:
        row = session.get(EntityRow, entity_id)
        return _info(row) if row else None

    @staticmethod
    def all(session: Session) -> list[EntityInfo]:
        return [
            _info(r) for r in session.execute(select(EntityRow).order_by(EntityRow.id)).scalars()
        ]

    @staticmethod
    def set_contacts(
        session: Session,
        entity_id: str,
        contacts: list[dict[str, str]],
        webhook_url: str,
        webhook_secret: str,
        actor: str,
        targets: TargetPolicy | None = None,
    ) -> str | None:
        """The entity's security officers and its webhook: where incidents are notified.
        A new webhook URL must be a target `targets` allows (public https by default);
        returns the previous URL when the webhook changed, None otherwise."""
        row = session.get(EntityRow, entity_id)
        if row is None:
            raise EntityError("entity.not_found", entity_id=entity_id)
        clean = []
        for c in contacts:
            email = str(c.get("email", "")).strip()
            if email and not _EMAIL.match(email):
                raise EntityError("entity.email_invalid", email=email)
            clean.append({k: str(c.get(k, "")).strip() for k in ("name", "email", "phone")})
        before = row.webhook_url or ""
        if webhook_url and webhook_url != before:
            try:
                (targets or TargetPolicy()).check(webhook_url)
            except TargetError as exc:
                raise EntityError("entity.webhook_refused", reason=str(exc)) from None
        if webhook_url and len(webhook_secret) < 16:
            raise EntityError("entity.webhook_secret_short")
        row.contacts, row.webhook_url = clean, webhook_url
        row.webhook_secret = keys.seal(session, webhook_secret, _seal_context(entity_id))
        row.updated_at = utcnow()
        audit.append(
            session,
            actor,
            "entity.contacts",
            "entity",
            entity_id,
            {"contacts": clean, "webhook_url": webhook_url},  # never the secret
        )
        if webhook_url == before:
            return None
        # Its own audit action, so a watch on the log sees redirections of notices.
        audit.append(
            session,
            actor,
            "entity.webhook",
            "entity",
            entity_id,
            {"from": before, "to": webhook_url},
        )
        return before

    @staticmethod
    def contacts_of(session: Session, entity_id: str) -> tuple[list[dict[str, str]], str, str]:
        """(contacts, webhook URL, webhook secret) of an entity; empty when unknown."""
        row = session.get(EntityRow, entity_id)
        if row is None:
            return [], "", ""
        secret = keys.unseal(session, row.webhook_secret or "", _seal_context(entity_id))
        return list(row.contacts or []), row.webhook_url or "", secret

    @staticmethod
    def seal_stored_secrets(session: Session) -> int:
        """Seal webhook secrets stored in clear before sealing existed (at start-up)."""
        rows = session.execute(
            select(EntityRow).where(
                EntityRow.webhook_secret != "",
                EntityRow.webhook_secret.not_like(keys.SEALED_PREFIX + "%"),
            )
        ).scalars()
        n = 0
        for row in rows:
            row.webhook_secret = keys.seal(session, row.webhook_secret, _seal_context(row.id))
            n += 1
        return n

    @staticmethod
    def version(session: Session) -> tuple[Any, ...]:
        return tuple(
            session.execute(select(func.count(EntityRow.id), func.max(EntityRow.updated_at))).one()
        )


def _seal_context(entity_id: str) -> str:
    return f"entities.webhook_secret:{entity_id}"


def _clean(
    name: str, level: str, networks: list[str], domains: list[str]
) -> tuple[list[str], list[str]]:
    """Checked and normalised networks and domains (EntityError names the fault)."""
    if level not in LEVELS:
        raise EntityError("entity.level_invalid", level=level, allowed=", ".join(LEVELS))
    if not name.strip():
        raise EntityError("entity.name_missing")
    bad = names.refused_in_name(name)
    if bad:  # the CLI and the CSV import come here without the API's models
        raise EntityError("entity.name_invalid", char=bad)
    try:
        nets = [str(ipaddress.ip_network(n.strip(), strict=False)) for n in networks if n.strip()]
    except ValueError as exc:
        raise EntityError("entity.network_invalid", reason=str(exc)) from None
    return nets, [d.strip().lower().rstrip(".") for d in domains if d.strip()]


def update(
    session: Session,
    entity_id: str,
    name: str,
    level: str,
    networks: list[str],
    domains: list[str],
    parent_id: str | None,
    active: bool,
    actor: str,
) -> bool:
    """Change a registered entity; False when nothing changed."""
    row = session.get(EntityRow, entity_id)
    if row is None:
        raise EntityError("entity.not_found", entity_id=entity_id)
    nets, doms = _clean(name, level, networks, domains)
    if parent_id and (parent_id == entity_id or session.get(EntityRow, parent_id) is None):
        raise EntityError("entity.parent_invalid", parent_id=parent_id)
    new = {
        "name": name.strip(),
        "level": level,
        "networks": nets,
        "domains": doms,
        "parent_id": parent_id or None,
        "active": active,
    }
    changed = {k: v for k, v in new.items() if getattr(row, k) != v}
    if not changed:
        return False
    for k, v in changed.items():
        setattr(row, k, v)
    row.updated_at = utcnow()
    audit.append(session, actor, "entity.update", "entity", entity_id, changed)
    return True


def _info(r: EntityRow) -> EntityInfo:
    return EntityInfo(r.id, r.name, r.level, tuple(r.networks), tuple(r.domains))


class Constituency:
    """Address → entity by longest prefix; name → entity by domain suffix."""

    def __init__(self, entities: list[EntityInfo]) -> None:
        self._v4 = pytricia.PyTricia(32)
        self._v6 = pytricia.PyTricia(128)
        self._domains: dict[str, EntityInfo] = {}
        for e in entities:
            for net in e.networks:
                (self._v6 if ":" in net else self._v4)[net] = e
            for d in e.domains:
                self._domains[d] = e

    def by_address(self, ip: str) -> EntityInfo | None:
        trie = self._v6 if ":" in ip else self._v4
        try:
            found: EntityInfo | None = trie.get(ip)
            return found
        except (KeyError, ValueError):
            return None

    def by_name(self, name: str) -> EntityInfo | None:
        n = name.lower().rstrip(".")
        while n:
            if n in self._domains:
                return self._domains[n]
            n = n.partition(".")[2]
        return None
