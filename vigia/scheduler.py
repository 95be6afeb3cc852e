"""Background jobs of one process (APScheduler 3). Each runs on an interval; a
shared one runs on one replica per interval (a lease in the database), its
outcome counted for /metrics:

- `audit-verify` (hourly, shared): check the audit hash chain;
- `indicators-expire` (hourly, shared): remove indicators past their expiry;
- `incidents` (30 s, shared): group alerts no hook placed, record SLA breaches,
  send the waiting notifications;
- `rules` (60 s, each replica): hot-swap the YARA pack when its files change;
- `certification` (30 min, shared): expire certificates, remind before expiry,
  put certificates under observation while a blocking incident is open;
- `progress-snapshot` (hourly, shared): the day's progress to the national target;
- `notify-digest` (hourly, shared): the daily digests of the entities that asked
  for them, on the first run after midnight UTC;
- `feeds` (VIGIA_FEED_MINUTES, shared; when feeds are configured): refresh them;
- `reports` (VIGIA_REPORTS_MINUTES, shared; when a source is configured): external
  reports from the folder, the IMAP mailbox and the polled URLs;
- `alerts-to-elasticsearch` (10 s) and `indicators-to-elasticsearch` (1 min), shared,
  with a cluster: bring its alerts and indicators up to date;
- `misp` (VIGIA_MISP_SYNC_MINUTES, shared; with a MISP): sync in, then send the
  waiting sightings and shared incidents.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from core import audit, leases
from core.clock import utcnow
from correlator.store import IndicatorStore
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
    """Sync from MISP, then send the sightings and shared incidents waiting in the outboxes."""
    from correlator import misp
    from incidents import mispshare
    from rules.sources.mispsync import SyncError

    server = misp.server(services.settings)
    if server is None:
        return
    try:
        out = misp.sync(services.db, services.take_in, server)
        log.info("misp sync: %d indicators, %d new", out.intake.loaded, out.intake.new)
        misp.deliver_sightings(services.db, server)
    except SyncError as exc:  # the last good indicators stay active; next run retries
        log.warning("misp: %s", exc)
    sent, failed = mispshare.deliver_waiting(services.db, server)  # kept until it lands
    if sent or failed:
        log.info("misp: %d incidents shared, %d to retry", sent, failed)


def incidents_job(services: Services) -> None:
    """Group alerts no hook placed, record SLA breaches, send waiting notifications."""
    from incidents import grouping, notify, sla

    now = utcnow()
    with services.db.transaction() as session:
        grouping.sweep(session, services.policy, now - timedelta(minutes=10))
        fresh = sla.find_breaches(session, now)
    if fresh:
        log.warning("SLA breaches: %d new", len(fresh))
    with services.db.transaction() as session:
        sent, failed = notify.deliver(
            session, services.mailer, services.contacts, services.webhook_targets
        )
    if sent or failed:
        log.info("notifications: %d sent, %d failed", sent, failed)


def certification_job(services: Services) -> None:
    """Expire certificates past their date, remind entities before expiry, and put
    certificates under observation while a blocking incident stays open."""
    from certification import certificates
    from core.i18n import render_mail
    from incidents import notify

    now, actor = utcnow(), "system:certification"
    with services.db.transaction() as session:
        certificates.expire_due(session, now, actor)
        certificates.observe(session, services.cert_policy, services.open_incidents, now, actor)
        reminders = certificates.due_reminders(session, services.cert_policy, now, actor)
        mails = []
        for r in reminders:
            book = services.contacts(session, r.entity_id)
            for to in book.emails if book else ():
                mails.append((to, r))
    mailer = services.mailer
    for to, r in mails:
        if mailer is None:
            log.warning(
                "certificate %s expires in %d days; no SMTP to remind", r.certificate, r.days_left
            )
            continue
        try:
            mail = render_mail(certificates.MAIL, "expiry", "es", r=r)
            notify.send_mail(mailer, to, mail.subject, mail.body)
        except OSError as exc:  # a reminder lost is logged; the next mark reminds again
            log.warning("reminder for %s to %s failed: %s", r.certificate, to, exc)


def progress_job(services: Services) -> None:
    """Record the day's progress to the national target."""
    from certification import snapshots

    with services.db.transaction() as session:
        snapshots.take(session, utcnow())


def es_alerts_job(services: Services) -> None:
    """Bring the alerts in Elasticsearch up to date with triage and incidents, and
    let those past the retention go."""
    if services.es is None:
        return
    with services.db.transaction(write=False) as session:
        services.es.sync_alerts(session)
    services.es.expire_alerts()


def es_indicators_job(services: Services) -> None:
    """The active indicators into Elasticsearch as ECS threat.indicator documents."""
    from correlator import esindicators

    if services.es is None:
        return
    with services.db.transaction(write=False) as session:
        esindicators.sync(services.es, session)


def rules_job(services: Services) -> None:
    """Hot-swap the YARA pack when its files change (a refused one leaves the old active)."""
    from rules.yarapack import YaraPackError

    try:
        if services.rules.reload():
            pack = services.rules.state.pack
            log.info("YARA pack swapped: %s", f"{pack.name}@{pack.version}" if pack else "-")
    except YaraPackError:
        pass  # logged and kept in the state by reload()


def feeds_job(services: Services) -> None:
    from correlator import feeds

    outcomes = feeds.refresh_all(services.db, services.take_in, services.settings.feeds)
    failed = [o.feed for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"feeds failed: {', '.join(failed)}")  # counted as a failed run


def reports_wanted(services: Services) -> bool:
    s = services.settings
    return bool(s.reports_dir or s.reports_imap_host or s.reports_urls)


def reports_job(services: Services) -> None:
    """External reports in: the watched folder, the IMAP mailbox, the polled URLs."""
    from vigia import reports

    reports.reports_job(services)


def digest_job(services: Services) -> None:
    """The daily digests of the entities that asked for them (incidents/prefs.py)."""
    from vigia import reports

    reports.digest_job(services)


def run_job(
    services: Services, name: str, job: Callable[[Services], object], every: timedelta, shared: bool
) -> str:
    """One run of a job: under its lease when replicas share it, its outcome counted
    for /metrics and kept on the lease. Returns ok, failed or skipped."""
    if shared and not leases.acquire(services.db, name, every * 0.9):
        services.telemetry.job(name, "skipped")
        return "skipped"
    started = time.monotonic()
    try:
        job(services)
    except Exception as exc:  # a failing job is logged and counted; the next run retries
        log.exception("job %s failed", name)
        outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
    else:
        outcome, detail = "ok", "ok"
    services.telemetry.job(name, outcome, time.monotonic() - started)
    if shared:
        with contextlib.suppress(Exception):  # the store may be the reason it failed
            leases.finish(services.db, name, detail)
    return outcome


# (id, job, interval, shared): a shared job runs on one replica per interval; the
# rules reload is per replica (each process holds its own pack).
JOBS: list[tuple[str, Callable[[Services], object], timedelta, bool]] = [
    ("audit-verify", verify_audit_job, timedelta(hours=1), True),
    ("indicators-expire", purge_expired_job, timedelta(hours=1), True),
    ("incidents", incidents_job, timedelta(seconds=30), True),
    ("rules", rules_job, timedelta(seconds=60), False),
    ("certification", certification_job, timedelta(minutes=30), True),
    # Hourly, so a day is never missed across restarts; each run replaces the day's row.
    ("progress-snapshot", progress_job, timedelta(hours=1), True),
    # Hourly: the day's digests go on the first run after midnight UTC.
    ("notify-digest", digest_job, timedelta(hours=1), True),
]


def start(services: Services) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    jobs = list(JOBS)
    if services.settings.feeds:
        jobs.append(("feeds", feeds_job, timedelta(minutes=services.settings.feed_minutes), True))
    if reports_wanted(services):
        jobs.append(
            ("reports", reports_job, timedelta(minutes=services.settings.reports_minutes), True)
        )
    if services.es is not None:
        jobs.append(("alerts-to-elasticsearch", es_alerts_job, timedelta(seconds=10), True))
        jobs.append(("indicators-to-elasticsearch", es_indicators_job, timedelta(minutes=1), True))
    if services.settings.misp_url:
        jobs.append(
            ("misp", misp_job, timedelta(minutes=services.settings.misp_sync_minutes), True)
        )
    for name, job, every, shared in jobs:
        scheduler.add_job(
            run_job,
            "interval",
            seconds=every.total_seconds(),
            args=[services, name, job, every, shared],
            id=name,
            max_instances=1,
            coalesce=True,
        )
    scheduler.start()
    return scheduler
