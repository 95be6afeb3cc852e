"""Background jobs of one process (APScheduler 3): the audit-chain watch, indicator expiry."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

from correlator.store import IndicatorStore
from vigia.core import audit
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
    scheduler.start()
    return scheduler
