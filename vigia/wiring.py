"""The composition root: settings → database → services, passed down explicitly.

Nothing here runs at import; `build()` is called by `vigia up`, `vigia serve`
and the admin verbs, and by the tests with their own settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from certification.registry import Constituency, Registry
from correlator.alerts import EntityLookup, EntityRef
from correlator.ingest import IngestService, LiveIndex
from correlator.intake import Intake, take_in
from rules.sources import LoadResult
from rules.warninglists import Warnings
from sensors.observation import Observation
from vigia.core import migrate
from vigia.core.db import Database
from vigia.core.settings import Settings, ensure_secret
from vigia.core.tokens import TokenService

# Observation fields whose names can point at an entity when no address does.
_NAME_FIELDS = ("url.domain", "tls.client.server_name", "dns.question.name")


class ConstituencyCache:
    """The registry as a lookup, rebuilt when entities change (a cheap version query)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: tuple[Any, ...] | None = None
        self._constituency = Constituency([])

    def lookup(self, session: Session) -> EntityLookup:
        version = Registry.version(session)
        if version != self._version:
            with self._lock:
                self._constituency = Constituency(Registry.all(session))
                self._version = version
        c = self._constituency

        def entity_of(obs: Observation) -> EntityRef | None:
            # The entity's own host is usually one end of the flow.
            e = c.by_address(obs.src_ip) or c.by_address(obs.dst_ip)
            if e is None:
                for f in _NAME_FIELDS:
                    for v in obs.values.get(f, ()):
                        e = c.by_name(v)
                        if e:
                            break
                    if e:
                        break
            return EntityRef(e.id, e.name) if e else None

        return entity_of


@dataclass
class Services:
    settings: Settings
    db: Database
    tokens: TokenService
    live: LiveIndex
    ingest: IngestService
    constituency: ConstituencyCache
    _warnings: Warnings | None = field(default=None, init=False, repr=False)

    def take_in(
        self, session: Session, result: LoadResult, actor: str, source_name: str | None = None
    ) -> Intake:
        """An indicator source into the store with this installation's settings:
        warninglists, retro-hunt depth, dedup window, the constituency."""
        return take_in(
            session,
            result,
            actor,
            self.settings.retro_hunt_days,
            self.settings.dedup_window_s,
            self.constituency.lookup(session),
            source_name,
            warnings=self.warnings(),
        )

    def warnings(self) -> Warnings | None:
        """The MISP warninglists, loaded on first use (about half a second), or None if off."""
        if not self.settings.warninglists:
            return None
        if self._warnings is None:
            self._warnings = Warnings.bundled()
        return self._warnings

    def close(self) -> None:
        self.db.dispose()


def build(settings: Settings, migrate_schema: bool = True) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = ensure_secret(settings)
    db = Database(settings.effective_database_url)
    if migrate_schema:
        migrate.upgrade(db.engine)
    live = LiveIndex()
    constituency = ConstituencyCache()
    lookup: Callable[[Session], EntityLookup] = constituency.lookup
    ingest = IngestService(db, live, settings.dedup_window_s, lookup, settings.max_batch)
    return Services(settings, db, TokenService(secret), live, ingest, constituency)
