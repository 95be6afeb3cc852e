"""The composition root: settings → database → services, passed down explicitly.

Nothing here runs at import; `build()` is called by `vigia up`, `vigia serve`
and the admin verbs, and by the tests with their own settings. The container it
fills is `api.services.Services` (the front door reads it without importing
this module); the interfaces between services (an entity's open incidents, its
contacts) are built here and injected.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.services import ConstituencyCache, Services
from certification import catalogue, progress_state
from certification.policy import CertPolicy, OpenIncident
from certification.registry import Registry
from core import audit, keys, migrate, private
from core.db import Database
from core.netguard import TargetPolicy
from core.settings import Settings, ensure_secret
from core.telemetry import Telemetry
from core.tokens import TokenService
from correlator import misp
from correlator.alerts import EntityLookup
from correlator.eshunt import EsHunt
from correlator.essearch import SearchWithFallback
from correlator.esstore import EsTelemetry
from correlator.ingest import IngestService
from correlator.intake import IndicatorIntake
from correlator.liveindex import LiveIndex
from correlator.liverules import LiveRules
from correlator.store import AlertStore
from correlator.warninglists import Warninglists
from incidents import grouping
from incidents import notify as notices
from incidents.lifecycle import OnTriaged
from incidents.models import IncidentEntityRow, IncidentRow
from incidents.policy import Policy
from incidents.reports.intake import ACTOR as REPORTS_ACTOR
from incidents.reports.intake import Notifier, ReportPolicy
from incidents.taxonomy import vocab as incident_vocab

__all__ = ["Services", "build", "contact_book", "es_store", "open_incidents", "yara_paths"]


def build(settings: Settings, migrate_schema: bool = True) -> Services:
    private.private_dir(settings.data_dir)  # 0700; the database file 0600 (docs/security.md)
    secret = ensure_secret(settings)
    private.private_sqlite(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    keys.install(db.engine, keys.Keys.from_secret(secret))  # audit HMAC, sealed secrets
    if migrate_schema:
        migrate.upgrade(db.engine)
        with db.transaction() as session:  # a database just migrated to 0022: fill it
            progress_state.ensure(session.connection())
    # Loads in the background once the app starts (api.app lifespan), from the snapshot
    # a previous run kept when it is still good.
    live = LiveIndex(db, snapshot=settings.data_dir / "cache" / "indicator-index.snapshot")
    constituency = ConstituencyCache()
    lookup: Callable[[Session], EntityLookup] = constituency.lookup
    policy = Policy.from_settings(settings)

    def group(session: Session, alert_ids: list[str]) -> object:
        return grouping.group_safely(session, policy, alert_ids)

    telemetry = Telemetry()
    es = es_store(settings)
    notify = notices.notifier(policy, contact_book, settings.public_url)
    warninglists = Warninglists(
        settings.warninglists, settings.cache_dir or settings.data_dir / "cache"
    )
    take_in = IndicatorIntake(
        settings.retro_hunt_days,
        settings.dedup_window_s,
        constituency.lookup,
        warninglists,
        telemetry,
        hunt_in=EsHunt(es.client, telemetry) if es else None,
    )
    ingest = IngestService(
        db,
        live,
        settings.dedup_window_s,
        lookup,
        settings.max_batch,
        after_alerts=group,
        telemetry=telemetry,
        mirror=es.mirror_alerts if es else None,
        store_first=es.store_observations if es else None,
    )
    if migrate_schema:
        with db.transaction() as session:
            audit.ensure_keyed(session)  # a chain from before keying is sealed once
            Registry.seal_stored_secrets(session)
            catalogue.ensure_bundled(session)
        # A data directory from before the sync point moved to the database.
        misp.import_old_state(db, settings.data_dir)
    return Services(
        settings=settings,
        db=db,
        tokens=TokenService(secret),
        live=live,
        ingest=ingest,
        constituency=constituency,
        policy=policy,
        cert_policy=CertPolicy.from_settings(settings),
        rules=LiveRules(yara_paths(settings)),
        telemetry=telemetry,
        open_incidents=open_incidents,
        contacts=contact_book,
        notify=notify,
        on_triaged=notify_on_triage(notify) if settings.notify_on_triage else None,
        report_notifier=report_notifier(notify),
        report_policy=report_policy(settings),
        mailer=mailer(settings),
        webhook_targets=TargetPolicy(
            settings.webhook_allow_http, tuple(settings.webhook_allow_networks)
        ),
        evidence_dir=settings.data_dir / "evidence",
        take_in=take_in,
        search_alerts=SearchWithFallback(es.client, telemetry) if es else AlertStore.search,
        warninglists=warninglists,
        es=es,
    )


def notify_on_triage(notify: notices.Notify) -> OnTriaged:
    """Every entity of an incident told when it is triaged (VIGIA_NOTIFY_ON_TRIAGE)."""

    def notify_all(session: Session, inc: IncidentRow, actor: str) -> None:
        notify(session, inc.id, actor)

    return notify_all


def report_notifier(notify: notices.Notify) -> Notifier:
    """External reports notify the entity of each incident with its hosts attached."""

    def queue(session: Session, incident_id: int, entity_id: str, extra: dict[str, Any]) -> int:
        return notify(session, incident_id, REPORTS_ACTOR, [entity_id], extra)

    return queue


def report_policy(settings: Settings) -> ReportPolicy:
    levels = {**ReportPolicy().ncciss_by_severity, **settings.reports_ncciss}
    return ReportPolicy(timedelta(hours=settings.reports_dedup_window_h), levels)


def mailer(settings: Settings) -> notices.Mailer | None:
    """The SMTP relay notices and digests go through; None without VIGIA_SMTP_HOST."""
    s = settings
    if not s.smtp_host:
        return None
    return notices.Mailer(
        s.smtp_host,
        s.smtp_port,
        s.smtp_from,
        s.smtp_starttls,
        s.smtp_user,
        s.smtp_password_file,
        s.smtp_plain_auth,
    )


def es_store(settings: Settings) -> EsTelemetry | None:
    """The Elasticsearch mirror when VIGIA_ELASTICSEARCH_URL names a cluster."""
    if not settings.elasticsearch_url:
        return None
    from elasticsearch import Elasticsearch

    client = Elasticsearch(settings.elasticsearch_url, request_timeout=10)
    return EsTelemetry(client, settings.es_retention_days)


def yara_paths(settings: Settings) -> list[Path]:
    """The shipped packs, then the installation's own rules folder."""
    shipped = Path(str(resources.files("rules").joinpath("packs")))
    return [shipped, settings.yara_dir or settings.data_dir / "yara"]


def open_incidents(session: Session, entity_id: str) -> list[OpenIncident]:
    """The incidents side, as certification sees it: an entity's open incidents."""
    q = (
        select(IncidentRow.id, IncidentRow.priority, IncidentRow.created_at)
        .join(IncidentEntityRow, IncidentEntityRow.incident_id == IncidentRow.id)
        .where(
            IncidentEntityRow.entity_id == entity_id,
            IncidentRow.status.in_(incident_vocab()["open_states"]),
        )
    )
    return [OpenIncident(i, p, t) for i, p, t in session.execute(q)]


def contact_book(session: Session, entity_id: str) -> notices.Contacts | None:
    """The registry's contacts of an entity, as the notifier wants them."""
    entity = Registry.get(session, entity_id)
    if entity is None:
        return None
    contacts, url, secret = Registry.contacts_of(session, entity_id)
    emails = tuple(c["email"] for c in contacts if c.get("email"))
    return notices.Contacts(entity.name, emails, url, secret)
