"""The national progress figures counted by the database, not in Python: a few
aggregate statements over certification_state (one row per entity, kept by
certification.progress_state), whatever the size of the registry. Counting from
the registry joined with every entity's newest certificate and assessment took
~300 ms at 10 000 entities after each change; this table is read in a few.

Each active entity's state is `certificates.state_of` written as one SQL CASE
over the stored status, level and validity of its newest certificate and the
status of its newest assessment, with the reader's clock: a certificate that
lapsed since the row was written counts as expired. Its department is the highest
departmental-level entity among itself, its parent and its grandparent (through
`parent_id`): a departmental body under its department's government belongs to
that department; none for national bodies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from certification.models import CertStateRow, CertTrendRow
from certification.progress_state import month_start, settle
from core.db import UtcDateTime

S = CertStateRow


@dataclass(frozen=True)
class Tally:
    level: str
    department: str | None
    state: str
    n: int


def _at(t: datetime) -> Any:
    return literal(t, UtcDateTime())


def state(now: datetime) -> ColumnElement[str]:
    """certificates.state_of, as SQL over certification_state."""
    return case(
        (and_(S.cert_status == "valid", S.valid_until > _at(now)), S.cert_level),
        (S.cert_status.in_(("suspended", "revoked")), S.cert_status),
        (
            and_(S.assessment_status.is_not(None), S.assessment_status != "decided"),
            case((S.assessment_status == "returned", "in_progress"), else_=S.assessment_status),
        ),
        (S.certificate_id.is_not(None), "expired"),
        (S.assessment_status.is_not(None), "in_progress"),
        else_="not_started",
    )


def tallies(session: Session, now: datetime) -> list[Tally]:
    """Active entities counted by (level, department, state)."""
    settle(session)  # this transaction's changes first
    st = state(now).label("state")
    q = (
        select(S.level, S.department, st, func.count())
        .where(S.active.is_(True))
        .group_by(S.level, S.department, st)
    )
    return [Tally(r[0], r[1], r[2], int(r[3])) for r in session.execute(q)]


def department_names(session: Session, ids: Iterable[str | None]) -> dict[str, str]:
    """The names of these departments (by primary key: not every departmental entity)."""
    settle(session)  # this transaction's changes first
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    rows = session.execute(select(S.entity_id, S.name).where(S.entity_id.in_(wanted)))
    return {r.entity_id: r.name for r in rows}


def closest(session: Session, now: datetime, certified: tuple[str, ...], n: int) -> list[Any]:
    """The n uncertified active entities with the best score, then progress."""
    settle(session)  # this transaction's changes first
    st = state(now)
    progress = func.coalesce(S.progress, 0.0)
    q = (
        select(
            S.entity_id.label("id"),
            S.name,
            st.label("state"),
            S.score.label("score"),
            progress.label("progress"),
        )
        .where(S.active.is_(True), st.not_in(certified))
        .order_by(func.coalesce(S.score, -1.0).desc(), progress.desc(), S.entity_id)
        .limit(n)
    )
    return list(session.execute(q))


def expiring(session: Session, now: datetime, until: datetime, n: int) -> list[Any]:
    """Active entities whose certificate in force ends before `until`, soonest first."""
    settle(session)  # this transaction's changes first
    q = (
        select(
            S.entity_id.label("id"),
            S.name,
            S.level,
            S.certificate_id.label("certificate"),
            S.cert_level,
            S.valid_until,
        )
        .where(
            S.active.is_(True),
            S.cert_status == "valid",
            S.valid_until > _at(now),
            S.valid_until <= _at(until),
        )
        .order_by(S.valid_until, S.entity_id)
        .limit(n)
    )
    return list(session.execute(q))


def monthly(session: Session, instants: list[datetime]) -> list[tuple[int, int]]:
    """(entities covered by a certificate in force, active entities registered) at
    each instant (ascending). A revoked, suspended or expired certificate ended when
    it was changed, if that came before its validity's end (progress._span).

    At a month's start (every instant but the last, now) both are read from
    certification_trend, kept with certification_state; at any other instant they
    are counted over certification_state, covered when the instant falls in the
    entity's latest stretch of coverage (certificates are issued when written, so a
    reader's clock does not fall before it)."""
    settle(session)  # this transaction's changes first
    trend = session.execute(
        select(CertTrendRow.month, CertTrendRow.covered, CertTrendRow.registered).order_by(
            CertTrendRow.month
        )
    ).all()
    out = []
    for t in instants:
        if t == month_start(t):
            day = t.date()
            covered = sum(r.covered for r in trend if r.month == day)
            out.append((covered, sum(r.registered for r in trend if r.month <= day)))
            continue
        q = select(
            func.coalesce(func.sum(case((S.registered_at <= _at(t), 1), else_=0)), 0),
            func.coalesce(
                func.sum(case((and_(S.cover_from <= _at(t), S.cover_until > _at(t)), 1), else_=0)),
                0,
            ),
        ).where(S.active.is_(True))
        registered, covered = session.execute(q).one()
        out.append((int(covered), int(registered)))
    return out
