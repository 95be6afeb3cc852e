"""Background jobs of one process (APScheduler 3): the audit-chain watch, indicator expiry."""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from correlator.store import IndicatorStore
from vigia.core import audit
from vigia.core.clock import utcnow
from vigia.wiring import Services

log = logging.getLogger("vigia.scheduler")


def verify_audit_job(services: Services) -> bool:
    with services.db.transaction(write=False) as session:
        verdict = audit.verify(session)
    if not verdict.ok:
        log.error("audit chain broken: %s", verdict.problem)
    return verdict.ok


def purge_expired_job(services: Services) -> int:
    with services.db.transaction() as session:
        gone = IndicatorStore.purge_expired(session)
        if gone:
            audit.append(
                session,
                "system:scheduler",
                "indicators.expire",
                "indicator",
                "*",
                {"removed": gone},
            )
    return gone


def misp_job(services: Services) -> None:
    """Sync from MISP, then send the sightings waiting in the outbox."""
    from rules.sources.mispsync import SyncError
    from vigia import misp

    server = misp.server(services)
    if server is None:
        return
    try:
        out = misp.sync(services, server)
        log.info("misp sync: %d indicators, %d new", out.intake.loaded, out.intake.new)
        misp.deliver_sightings(services, server)
    except SyncError as exc:  # the last good indicators stay active; next run retries
        log.warning("misp: %s", exc)


def incidents_job(services: Services) -> None:
    """Group alerts no hook placed, record SLA breaches, send waiting notifications."""
    from incidents import grouping, notify, sla
    from vigia.wiring import contact_book

    now = utcnow()
    with services.db.transaction() as session:
        grouping.sweep(session, services.policy, now - timedelta(minutes=10))
        fresh = sla.find_breaches(session, now)
    if fresh:
        log.warning("SLA breaches: %d new", len(fresh))
    with services.db.transaction() as session:
        sent, failed = notify.deliver(session, services.mailer(), contact_book)
    if sent or failed:
        log.info("notifications: %d sent, %d failed", sent, failed)


def certification_job(services: Services) -> None:
    """Expire certificates past their date, remind entities before expiry, and put
    certificates under observation while a blocking incident stays open."""
    from certification import certificates
    from incidents import notify
    from vigia.wiring import contact_book, open_incidents

    now, actor = utcnow(), "system:certification"
    with services.db.transaction() as session:
        certificates.expire_due(session, now, actor)
        certificates.observe(session, services.cert_policy, open_incidents, now, actor)
        reminders = certificates.due_reminders(session, services.cert_policy, now, actor)
        mails = []
        for r in reminders:
            book = contact_book(session, r.entity_id)
            for to in book.emails if book else ():
                mails.append((to, r))
    mailer = services.mailer()
    for to, r in mails:
        if mailer is None:
            log.warning(
                "certificate %s expires in %d days; no SMTP to remind", r.certificate, r.days_left
            )
            continue
        try:
            notify.send_mail(
                mailer,
                to,
                f"Certificado {r.certificate}: vence en {r.days_left} días",
                f"El certificado {r.certificate} de su entidad vence el {r.valid_until:%Y-%m-%d}.\n"
                "Para renovarlo, abra una nueva autoevaluación en la consola de Vigía.",
            )
        except OSError as exc:  # a reminder lost is logged; the next mark reminds again
            log.warning("reminder for %s to %s failed: %s", r.certificate, to, exc)


def rules_job(services: Services) -> None:
    """Hot-swap the YARA pack when its files change (a refused one leaves the old active)."""
    from rules.yarapack import YaraPackError

    try:
        if services.rules.reload():
            pack = services.rules.state.pack
            log.info("YARA pack swapped: %s", f"{pack.name}@{pack.version}" if pack else "-")
    except YaraPackError:
        pass  # logged and kept in the state by reload()


def start(services: Services) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        verify_audit_job,
        "interval",
        hours=1,
        args=[services],
        id="audit-verify",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        purge_expired_job,
        "interval",
        hours=1,
        args=[services],
        id="indicators-expire",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        incidents_job,
        "interval",
        seconds=30,
        args=[services],
        id="incidents",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        rules_job,
        "interval",
        seconds=60,
        args=[services],
        id="rules",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        certification_job,
        "interval",
        minutes=30,
        args=[services],
        id="certification",
        max_instances=1,
        coalesce=True,
    )
    if services.settings.misp_url:
        scheduler.add_job(
            misp_job,
            "interval",
            minutes=services.settings.misp_sync_minutes,
            args=[services],
            id="misp",
            max_instances=1,
            coalesce=True,
        )
    scheduler.start()
    return scheduler
