"""certification_state and certification_trend (models.CertStateRow, CertTrendRow)
kept up to date: one row per entity with what its certification state is worked
out from, and the national trend's counts at each month's start, rewritten for the
entities a flush touched.

Every flush of the process goes through `follow` (certification/__init__.py hangs
it on SQLAlchemy's Session): an entity, certificate or assessment written, changed
or deleted — by the registry, an assessment's answer, submission or decision, a
certificate's issue, renewal, suspension, revocation or expiry, the demo loader or
a test's direct row — has its entity's row rewritten in the same transaction, from
the tables themselves, and the trend's counts moved by the difference between its
old and new row. A change to an entity also rewrites its children and
grandchildren (their department goes through it). Writes that bypass the ORM
(plain SQL) are not seen until `rebuild`, which start-up runs when the table does
not hold every entity and the daily progress snapshot runs anyway.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from itertools import chain
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from certification.models import AssessmentRow, CertificateRow, CertStateRow, CertTrendRow
from certification.registry import EntityRow

DEPARTMENTAL = "departmental"
# Above this many entities in one flush (a registry import, the demo, generated
# data), both tables are rewritten whole: a few statements instead of long IN lists.
WHOLE = 500
MAX_MONTHS = 1200  # a certificate valid for a century is a data error: counted that far
CUT = ("revoked", "suspended", "expired")

_STATE = cast(Table, CertStateRow.__table__)
_TREND = cast(Table, CertTrendRow.__table__)
_COLUMNS = (
    "entity_id",
    "name",
    "level",
    "department",
    "active",
    "registered_at",
    "certificate_id",
    "cert_status",
    "cert_level",
    "valid_until",
    "assessment_status",
    "score",
    "progress",
)


def _source() -> Any:
    """Each entity with its newest certificate and assessment, as CertStateRow's
    columns. The newest certificate is a correlated subquery by the index on
    entity_id (joining a window-function derived table made SQLite scan it once per
    entity: 12 s at 10 000)."""
    c, a = aliased(CertificateRow, name="c"), aliased(AssessmentRow, name="a")
    p, gp = aliased(EntityRow, name="p"), aliased(EntityRow, name="gp")
    c2, a2 = aliased(CertificateRow), aliased(AssessmentRow)
    newest_cert = (
        select(c2.id)
        .where(c2.entity_id == EntityRow.id)
        .order_by(c2.issued_at.desc(), c2.id.desc())
        .limit(1)
        .correlate(EntityRow)
        .scalar_subquery()
    )
    newest_assessment = (
        select(func.max(a2.id)).where(a2.entity_id == EntityRow.id).correlate(EntityRow)
    ).scalar_subquery()
    department = case(  # the highest departmental entity of the three
        (gp.level == DEPARTMENTAL, gp.id),
        (p.level == DEPARTMENTAL, p.id),
        (EntityRow.level == DEPARTMENTAL, EntityRow.id),
        else_=None,
    )
    return (
        select(
            EntityRow.id,
            EntityRow.name,
            EntityRow.level,
            department,
            EntityRow.active,
            EntityRow.created_at,
            c.id,
            c.status,
            c.level,
            c.valid_until,
            a.status,
            a.score,
            a.progress,
        )
        .select_from(EntityRow)
        .outerjoin(c, c.id == newest_cert)
        .outerjoin(a, a.id == newest_assessment)
        .outerjoin(p, p.id == EntityRow.parent_id)
        .outerjoin(gp, gp.id == p.parent_id)
    )


# -- when certificates kept an entity covered ----------------------------------


def month_start(t: datetime) -> datetime:
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def _next_month(m: datetime) -> datetime:
    return datetime(m.year + m.month // 12, m.month % 12 + 1, 1, tzinfo=UTC)


def _first_start_from(t: datetime) -> datetime:
    """The first month's start at or after t: the one t is counted at first."""
    m = month_start(t)
    return m if m == t else _next_month(m)


def covering(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """[from, until) stretches of coverage: the spans merged where they overlap or
    touch (a renewal ends the old certificate when the new one starts)."""
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def months_covered(stretches: list[tuple[datetime, datetime]]) -> list[str]:
    out = []
    for start, end in stretches:
        m = _first_start_from(start)
        for _ in range(MAX_MONTHS):
            if m >= end:
                break
            out.append(m.date().isoformat())
            m = _next_month(m)
    return out


def _spans(conn: Connection, ids: list[str] | None) -> dict[str, list[tuple[datetime, datetime]]]:
    """Each entity's certificates as (from, to) in force; revoked, suspended and
    renewed ones end when that happened (progress._span)."""
    c = CertificateRow
    q = select(c.entity_id, c.issued_at, c.valid_until, c.status, c.updated_at)
    if ids is not None:
        q = q.where(c.entity_id.in_(ids))
    out: dict[str, list[tuple[datetime, datetime]]] = {}
    for entity, issued, until, status, updated in conn.execute(q):
        end = updated if status in CUT and updated < until else until
        out.setdefault(entity, []).append((issued, end))
    return out


def _cover(conn: Connection, ids: list[str] | None) -> dict[str, list[str]]:
    """Write each entity's covered months and latest stretch; its months."""
    params, months = [], {}
    for entity, spans in _spans(conn, ids).items():
        stretches = covering(spans)
        if not stretches:
            continue
        months[entity] = months_covered(stretches)
        last = stretches[-1]
        params.append({"eid": entity, "m": months[entity], "f": last[0], "u": last[1]})
    if params:
        conn.execute(
            update(_STATE)
            .where(_STATE.c.entity_id == bindparam("eid"))
            .values(months=bindparam("m"), cover_from=bindparam("f"), cover_until=bindparam("u")),
            params,
        )
    return months


# -- the trend's counts ----------------------------------------------------------


def _counts(rows: Iterable[Any]) -> Counter[tuple[str, str]]:
    """What (active, registered_at, months) rows add to the trend, by (month, column)."""
    out: Counter[tuple[str, str]] = Counter()
    for active, registered_at, months in rows:
        if not active:
            continue
        out[(_first_start_from(registered_at).date().isoformat(), "registered")] += 1
        for m in months or ():
            out[(m, "covered")] += 1
    return out


def _by_month(counts: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
    months: dict[str, dict[str, Any]] = {}
    for (m, column), n in counts.items():
        if n:
            row = months.setdefault(
                m, {"month": date.fromisoformat(m), "covered": 0, "registered": 0}
            )
            row[column] += n
    return [months[m] for m in sorted(months)]


def _add(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add to the months' counts, creating the months not there yet (one statement
    that cannot race another writer's insert of the same month)."""
    if not rows:
        return
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        ins = (sqlite.insert if name == "sqlite" else postgresql.insert)(_TREND)
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=[_TREND.c.month],
                set_={
                    "covered": _TREND.c.covered + ins.excluded.covered,
                    "registered": _TREND.c.registered + ins.excluded.registered,
                },
            ),
            rows,
        )
        return
    for r in rows:  # other databases: update, else insert
        moved = conn.execute(
            update(_TREND)
            .where(_TREND.c.month == r["month"])
            .values(
                covered=_TREND.c.covered + r["covered"],
                registered=_TREND.c.registered + r["registered"],
            )
        )
        if not moved.rowcount:
            conn.execute(insert(_TREND).values(**r))


def _held(conn: Connection, ids: list[str]) -> list[Any]:
    s = _STATE.c
    q = select(s.active, s.registered_at, s.months).where(s.entity_id.in_(ids))
    return list(conn.execute(q))


# -- rewriting ---------------------------------------------------------------------


def rebuild(conn: Connection) -> None:
    """Both tables again from the registry, certificates and assessments."""
    conn.execute(delete(_STATE))
    conn.execute(insert(_STATE).from_select(_COLUMNS, _source()))
    _cover(conn, None)
    conn.execute(delete(_TREND))
    s = _STATE.c
    rows = _by_month(_counts(conn.execute(select(s.active, s.registered_at, s.months))))
    if rows:
        conn.execute(insert(_TREND), rows)


def refresh(conn: Connection, entity_ids: Iterable[str]) -> None:
    """These entities' rows again (an entity no longer registered loses its row) and
    the trend moved by the difference."""
    ids = sorted(set(entity_ids))
    if len(ids) > WHOLE:
        rebuild(conn)
        return
    if not ids:
        return
    before = _counts(_held(conn, ids))
    conn.execute(delete(_STATE).where(_STATE.c.entity_id.in_(ids)))
    conn.execute(insert(_STATE).from_select(_COLUMNS, _source().where(EntityRow.id.in_(ids))))
    _cover(conn, ids)
    after = _counts(_held(conn, ids))
    after.subtract(before)
    _add(conn, _by_month(after))


def ensure(conn: Connection) -> bool:
    """Rebuild when the table does not hold every entity (a database migrated to
    revision 0022, or entities written by plain SQL); whether it did."""
    held = conn.execute(select(func.count()).select_from(_STATE)).scalar()
    registered = conn.execute(select(func.count()).select_from(EntityRow)).scalar()
    if held == registered:
        return False
    rebuild(conn)
    return True


def _family(conn: Connection, ids: set[str]) -> set[str]:
    """The entities, their children and grandchildren."""
    if len(ids) > WHOLE:
        return ids
    children = set(conn.execute(select(EntityRow.id).where(EntityRow.parent_id.in_(ids))).scalars())
    grandchildren: set[str] = set()
    if children:
        q = select(EntityRow.id).where(EntityRow.parent_id.in_(children))
        grandchildren = set(conn.execute(q).scalars())
    return ids | children | grandchildren


def touched(objects: Iterable[object]) -> tuple[set[str], set[str]]:
    """(entities changed, entities whose certificates or assessments changed)."""
    entities: set[str] = set()
    others: set[str] = set()
    for obj in objects:
        if isinstance(obj, EntityRow):
            entities.add(obj.id)
        elif isinstance(obj, (CertificateRow, AssessmentRow)):
            others.add(obj.entity_id)
    return entities, others


_PENDING = "certification_state_pending"  # session.info: entities touched, to settle


def follow(session: Session, _flush_context: Any = None) -> None:
    """SQLAlchemy's after_flush: the session still lists what it has just written.
    Noted only: a request flushes several times, and the kept rows are rewritten
    once, when its transaction commits (settle)."""
    entities, others = touched(chain(session.new, session.dirty, session.deleted))
    if entities or others:
        held = session.info.setdefault(_PENDING, (set(), set()))
        held[0].update(entities)
        held[1].update(others)


def settle(session: Session) -> None:
    """SQLAlchemy's before_commit, and progress_query's readers before they read: the
    kept rows of every entity the transaction touched, rewritten once, in the
    transaction (the last changes flushed first)."""
    session.flush()
    held = session.info.pop(_PENDING, None)
    if held is None:
        return
    entities, others = held
    conn = session.connection()
    refresh(conn, (_family(conn, entities) if entities else set()) | others)


def forget(session: Session, *_args: Any) -> None:
    """SQLAlchemy's after_rollback: nothing of it was written."""
    session.info.pop(_PENDING, None)
