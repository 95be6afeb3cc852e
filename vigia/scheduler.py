"""Background jobs of one process (APScheduler 3): today the audit-chain watch."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

from vigia.core import audit
from vigia.wiring import Services

log = logging.getLogger("vigia.scheduler")


def verify_audit_job(services: Services) -> bool:
    with services.db.transaction(write=False) as session:
        verdict = audit.verify(session)
    if not verdict.ok:
        log.error("audit chain broken: %s", verdict.problem)
    return verdict.ok


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
    scheduler.start()
    return scheduler
