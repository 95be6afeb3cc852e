"""The national figures kept between dashboard loads, per database, until the data
they come from changes.

Counting 10 000 entities costs the database some hundreds of milliseconds; the
dashboard and the progress route are read far more often than the registry,
the certificates or the assessments change. Before answering from what it
kept, each read asks the database for a fingerprint (one statement: the row
counts and newest `updated_at` of entities, certificates and assessments, the
number of suspended certificates, and the next instant a certificate in force
lapses), so a change made by any
process or replica, or a certificate lapsing, is seen on the next load. The
figures are also dropped when the UTC day changes (the trend's months, the days
left).
"""

from __future__ import annotations

import threading
from datetime import date, datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import func, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from certification import progress
from certification.models import AssessmentRow, CertificateRow
from certification.registry import EntityRow
from core.db import UtcDateTime


class _Kept:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[Any, ...] | None = None
        self.figures: dict[str, Any] = {}


_KEPT: WeakKeyDictionary[Engine, _Kept] = WeakKeyDictionary()
_GUARD = threading.Lock()


def fingerprint(session: Session, now: datetime) -> tuple[Any, ...]:
    def of(model: Any) -> tuple[Any, Any]:
        return (
            select(func.count()).select_from(model).scalar_subquery(),
            select(func.max(model.updated_at)).scalar_subquery(),
        )

    lapse = (
        select(func.min(CertificateRow.valid_until))
        .where(
            CertificateRow.status == "valid",
            CertificateRow.valid_until > literal(now, UtcDateTime()),
        )
        .scalar_subquery()
    )
    # A suspended certificate that expires or is revoked keeps its updated_at
    # (certificates._end): the count of suspended ones shows that change.
    suspended = (
        select(func.count())
        .select_from(CertificateRow)
        .where(CertificateRow.status == "suspended")
        .scalar_subquery()
    )
    return tuple(
        session.execute(
            select(*of(EntityRow), *of(CertificateRow), *of(AssessmentRow), lapse, suspended)
        ).one()
    )


def figures(
    session: Session, now: datetime, target: float = progress.TARGET, by: date | None = None
) -> dict[str, Any]:
    """`progress.progress(session, now, target, by)`, from what was kept when nothing
    it depends on changed (the figures are kept without the chosen day, which
    `progress.plan` applies on each call). A new dict each call (callers add keys)."""
    engine = session.get_bind().engine
    with _GUARD:
        kept = _KEPT.setdefault(engine, _Kept())
    key = (now.date(), target, fingerprint(session, now))
    with kept.lock:
        if kept.key != key:
            kept.figures = progress.progress(session, now, target)
            kept.key = key
        base = kept.figures
    return progress.plan(base, now, by)
