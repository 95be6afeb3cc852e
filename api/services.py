"""The services container the front door reads: what `api` (and the scheduler above
it) needs, built and injected by the composition root (`vigia.wiring.build`).

It lives here, not in the composition root, so the front door never imports the
root; the interfaces between the services (an entity's open incidents, its
contacts) are fields the root fills in, not functions a service reaches for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from certification.policy import CertPolicy, OpenIncidents
from certification.registry import Constituency, EntityInfo, Registry
from core.db import Database
from core.netguard import TargetPolicy
from core.settings import Settings
from core.telemetry import Telemetry
from core.tokens import TokenService
from correlator.alerts import EntityLookup, EntityRef
from correlator.essearch import SearchAlerts
from correlator.esstore import EsTelemetry
from correlator.ingest import IngestService
from correlator.intake import TakeIn
from correlator.liveindex import LiveIndex
from correlator.liverules import LiveRules
from correlator.warninglists import Warninglists
from incidents import notify as notices
from incidents.lifecycle import OnTriaged
from incidents.policy import Policy
from incidents.reports.intake import Notifier, ReportPolicy
from sensors.observation import Observation

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

    def attributor(self, session: Session) -> ReportAttributor:
        """The registry as external reports need it: address (longest prefix) or name."""
        self.lookup(session)  # rebuilds when entities changed
        return ReportAttributor(self._constituency)


class ReportAttributor:
    """Report findings → the entity whose networks or domains hold the host."""

    def __init__(self, constituency: Constituency) -> None:
        self._c = constituency
        self._refs: dict[str, EntityRef] = {}  # one per entity, not one per row

    def _ref(self, e: EntityInfo | None) -> EntityRef | None:
        if e is None:
            return None
        ref = self._refs.get(e.id)
        if ref is None:
            ref = self._refs[e.id] = EntityRef(e.id, e.name)
        return ref

    def by_address(self, ip: str) -> EntityRef | None:
        return self._ref(self._c.by_address(ip))

    def by_name(self, name: str) -> EntityRef | None:
        return self._ref(self._c.by_name(name))


@dataclass
class Services:
    """The services, and the interfaces between them, as `vigia.wiring.build` made them."""

    settings: Settings
    db: Database
    tokens: TokenService
    live: LiveIndex
    ingest: IngestService
    constituency: ConstituencyCache
    policy: Policy
    cert_policy: CertPolicy
    rules: LiveRules
    telemetry: Telemetry
    # The interfaces the root injects: the incidents side as certification sees it,
    # the registry's contacts as the notifier wants them, the notifier itself.
    open_incidents: OpenIncidents
    contacts: notices.ContactBook
    notify: notices.Notify  # queue an incident's notices (the scheduler sends them)
    on_triaged: OnTriaged | None  # every entity told when an incident is triaged, if set
    report_notifier: Notifier  # external reports: the entity, with its hosts attached
    report_policy: ReportPolicy
    mailer: notices.Mailer | None  # None without VIGIA_SMTP_HOST
    webhook_targets: TargetPolicy  # where entity webhooks may post
    evidence_dir: Path
    # The correlator's use cases the front door calls: an indicator source taken in
    # (warninglists, retro-hunt), the triage search (Elasticsearch, SQL if it fails).
    take_in: TakeIn
    search_alerts: SearchAlerts
    warninglists: Warninglists  # warmed up at start (api.app), off the first upload's path
    es: EsTelemetry | None = None  # telemetry in Elasticsearch, when configured

    def close(self) -> None:
        self.warninglists.close()
        self.db.dispose()
