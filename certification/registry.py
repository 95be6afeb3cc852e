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
from sqlalchemy import JSON, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from vigia.core import audit
from vigia.core.clock import utcnow
from vigia.core.db import Base, UtcDateTime

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


class EntityError(ValueError):
    pass


class EntityRow(Base):
    __tablename__ = "entities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    level: Mapped[str] = mapped_column(String(30))
    networks: Mapped[list[str]] = mapped_column(JSON)
    domains: Mapped[list[str]] = mapped_column(JSON)
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
            raise EntityError(f"entity id {entity_id!r}: use 2-63 lower-case letters, digits, -")
        if level not in LEVELS:
            raise EntityError(f"level {level!r}: one of {', '.join(LEVELS)}")
        if not name.strip():
            raise EntityError("an entity needs a name")
        try:
            nets = [
                str(ipaddress.ip_network(n.strip(), strict=False)) for n in networks if n.strip()
            ]
        except ValueError as exc:
            raise EntityError(str(exc)) from None
        doms = [d.strip().lower().rstrip(".") for d in domains if d.strip()]
        if session.get(EntityRow, entity_id) is not None:
            raise EntityError(f"entity {entity_id!r} already exists")
        now = utcnow()
        session.add(
            EntityRow(
                id=entity_id,
                name=name.strip(),
                level=level,
                networks=nets,
                domains=doms,
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
    def version(session: Session) -> tuple[Any, ...]:
        return tuple(
            session.execute(select(func.count(EntityRow.id), func.max(EntityRow.updated_at))).one()
        )


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
