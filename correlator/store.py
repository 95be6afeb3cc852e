"""The embedded stores' queries: indicators and alerts (SQL).

The same code runs on SQLite and PostgreSQL; the tables are correlator.rows.
Alerts are upserted by their deterministic id: a repeat of the same match in
the same window adds to `count` instead of making a second alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.clock import parse_iso, utcnow
from core.cursor import decode_cursor, encode_cursor
from correlator.alerts import alert_tlp
from correlator.rows import AlertRow, IndicatorRow, IndicatorVersion, queue_columns
from rules.indicator import Indicator

YIELD_ROWS = 10_000  # rows fetched at a time by the index's reads


class IndicatorStore:
    @staticmethod
    def save(session: Session, indicators: Iterable[Indicator]) -> int:
        """Insert new indicators, refresh known ones; returns how many rows changed."""
        now = utcnow()
        rows = [
            {
                "type": i.type,
                "value": i.value,
                "provider": i.provider,
                "to_ids": i.to_ids,
                "confidence": i.confidence,
                "tlp": i.tlp,
                "event": i.event,
                "threat_level": i.threat_level,
                "first_seen": i.first_seen,
                "last_seen": i.last_seen,
                "expires": i.expires,
                "comment": i.comment,
                "loaded_at": now,
                "whitelist": i.whitelist,
                "if_in": ",".join(i.if_in),
                "extra": dict(i.extra) or None,
            }
            for i in indicators
        ]
        # One row per key: PostgreSQL refuses to upsert the same row twice in a statement.
        rows = list({(r["type"], r["value"], r["provider"]): r for r in rows}.values())
        if not rows:
            return 0
        # The version first: its row lock orders writers, so versions follow commits
        # and a live index that read version V has seen every row stamped up to V.
        version = IndicatorStore._bump(session)
        for r in rows:
            r["changed_in"] = version
        insert = _insert_for(session)
        changed = 0
        for start in range(0, len(rows), 500):
            stmt = insert(IndicatorRow).values(rows[start : start + 500])
            keep = (
                "to_ids",
                "confidence",
                "tlp",
                "event",
                "threat_level",
                "last_seen",
                "expires",
                "comment",
                "loaded_at",
                "changed_in",
                "whitelist",
                "if_in",
                "extra",
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["type", "value", "provider"],
                set_={k: stmt.excluded[k] for k in keep},
            )
            changed += session.execute(stmt).rowcount  # type: ignore[attr-defined]
        return changed

    @staticmethod
    def unknown(session: Session, indicators: list[Indicator]) -> list[Indicator]:
        """Those not stored yet (by type, value and provider): what a retro-hunt looks for."""
        keys = {(i.type, i.value, i.provider) for i in indicators}
        known: set[tuple[str, str, str]] = set()
        values = sorted({i.value for i in indicators})
        for start in range(0, len(values), 500):
            rows = session.execute(
                select(IndicatorRow.type, IndicatorRow.value, IndicatorRow.provider).where(
                    IndicatorRow.value.in_(values[start : start + 500])
                )
            )
            known.update((t, v, p) for t, v, p in rows)
        fresh = keys - known
        seen: set[tuple[str, str, str]] = set()
        out = []
        for i in indicators:
            k = (i.type, i.value, i.provider)
            if k in fresh and k not in seen:
                seen.add(k)
                out.append(i)
        return out

    @staticmethod
    def load_all(session: Session) -> list[Indicator]:
        now = utcnow()
        rows = session.execute(
            select(IndicatorRow)
            .where(or_(IndicatorRow.expires.is_(None), IndicatorRow.expires > now))
            # In batches: fetching a million rows in one call held the GIL for
            # seconds (psycopg), stalling every request while the centre loads.
            .execution_options(yield_per=YIELD_ROWS)
        ).scalars()
        return [r.to_indicator() for r in rows]

    @staticmethod
    def active_rows(session: Session, now: datetime) -> Iterator[Sequence[Any]]:
        """The unexpired indicators as plain tuples (bulkstore.ROW), streamed: what a
        live index is built from (a million ORM objects took 27 s and 700 MB)."""
        from correlator import bulkstore

        return bulkstore.active_rows(session, now)

    @staticmethod
    def whitelisted(session: Session) -> list[Indicator]:
        """The unexpired whitelisted values (few): what a retro-hunt's index must also hold."""
        now = utcnow()
        rows = session.execute(
            select(IndicatorRow).where(
                IndicatorRow.whitelist.is_(True),
                or_(IndicatorRow.expires.is_(None), IndicatorRow.expires > now),
            )
        ).scalars()
        return [r.to_indicator() for r in rows]

    @staticmethod
    def changed_since(session: Session, version: int) -> list[Indicator]:
        """The indicators written by versions after this one, expired ones included
        (a live index drops those)."""
        rows = session.execute(
            select(IndicatorRow)
            .where(IndicatorRow.changed_in > version)
            .execution_options(yield_per=YIELD_ROWS)  # in batches, as load_all
        )
        return [r.to_indicator() for r in rows.scalars()]

    @staticmethod
    def purge_expired(session: Session) -> int:
        """Delete indicators past their expiry; returns how many went."""
        result = session.execute(delete(IndicatorRow).where(IndicatorRow.expires <= utcnow()))
        gone = int(result.rowcount)  # type: ignore[attr-defined]
        if gone:
            IndicatorStore._bump(session, rebuild=True)
        return gone

    @staticmethod
    def version(session: Session) -> tuple[int, int]:
        """(version, the last version that removed indicators): the first changes
        whenever indicators are added, refreshed or removed.

        One row read, whatever the table's size: every replica asks this for
        every batch it ingests (counting a million rows each time would not do).
        """
        row = session.execute(
            select(IndicatorVersion.version, IndicatorVersion.rebuild).where(
                IndicatorVersion.id == 1
            )
        ).one_or_none()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    @staticmethod
    def _bump(session: Session, rebuild: bool = False) -> int:
        """The next version (the row is made by the migration that made the table)."""
        values: dict[str, Any] = {"version": IndicatorVersion.version + 1}
        if rebuild:
            values["rebuild"] = IndicatorVersion.version + 1
        session.execute(
            update(IndicatorVersion)
            .where(IndicatorVersion.id == 1)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return int(
            session.execute(
                select(IndicatorVersion.version).where(IndicatorVersion.id == 1)
            ).scalar_one()
        )


@dataclass(frozen=True)
class AlertFilter:
    since: datetime | None = None
    until: datetime | None = None
    indicator_type: str | None = None
    entity_id: str | None = None
    status: str | None = None
    hide_tlp: tuple[str, ...] = ()  # TLP levels the caller may not see


class AlertStore:
    @staticmethod
    def upsert(session: Session, alert: dict[str, Any]) -> None:
        """Store an alert built by AlertFolder, or add its hits to the one with its id."""
        event = alert["event"]
        first, last = parse_iso(event["start"]), parse_iso(event["end"])
        count, tlp = event["count"], alert_tlp(alert)
        entity_id = alert.get("organization", {}).get("id")
        enr = alert["threat"]["enrichments"][0]
        now = utcnow()
        values = {
            "id": alert["event"]["id"],
            "timestamp": first,
            "last_seen": last,
            "observer": alert["observer"]["name"],
            "matched_type": enr["matched"]["type"],
            "indicator_type": enr["indicator"]["type"],
            "entity_id": entity_id,
            "tlp": tlp,
            "status": "new",
            "count": count,
            "severity": alert["event"]["severity"],
            "doc": alert,
            "updated_at": now,
            "received_at": now,
            **queue_columns(alert),
        }
        insert = _insert_for(session)
        stmt = insert(AlertRow).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "count": AlertRow.count + stmt.excluded.count,
                "last_seen": func.max(AlertRow.last_seen, stmt.excluded.last_seen)
                if session.get_bind().dialect.name == "sqlite"
                else func.greatest(AlertRow.last_seen, stmt.excluded.last_seen),
                "updated_at": stmt.excluded.updated_at,
            },
        )
        session.execute(stmt)

    @staticmethod
    def get(session: Session, alert_id: str) -> AlertRow | None:
        return session.get(AlertRow, alert_id)

    @staticmethod
    def updated_since(session: Session, since: datetime | None, limit: int) -> Iterator[AlertRow]:
        """Alerts changed at or after `since` (all when None), oldest change first,
        read `limit` at a time."""
        after: tuple[datetime, str] | None = None
        while True:
            q = select(AlertRow).order_by(AlertRow.updated_at, AlertRow.id).limit(limit)
            if since is not None:
                q = q.where(AlertRow.updated_at >= since)
            if after is not None:
                q = q.where(
                    or_(
                        AlertRow.updated_at > after[0],
                        and_(AlertRow.updated_at == after[0], AlertRow.id > after[1]),
                    )
                )
            rows = session.execute(q).scalars().all()
            yield from rows
            if len(rows) < limit:
                return
            after = (rows[-1].updated_at, rows[-1].id)

    @staticmethod
    def search(
        session: Session, f: AlertFilter, limit: int, cursor: str | None
    ) -> tuple[Sequence[AlertRow], str | None]:
        """Newest first; the cursor is the (timestamp, id) of the last row returned."""
        q = select(AlertRow)
        if f.since:
            q = q.where(AlertRow.timestamp >= f.since)
        if f.until:
            q = q.where(AlertRow.timestamp < f.until)
        if f.indicator_type:
            q = q.where(AlertRow.indicator_type == f.indicator_type)
        if f.entity_id:
            q = q.where(AlertRow.entity_id == f.entity_id)
        if f.status:
            q = q.where(AlertRow.status == f.status)
        if f.hide_tlp:
            q = q.where(AlertRow.tlp.not_in(f.hide_tlp))
        if cursor:
            ts, aid = decode_cursor(cursor)
            q = q.where(
                or_(AlertRow.timestamp < ts, and_(AlertRow.timestamp == ts, AlertRow.id < aid))
            )
        q = q.order_by(AlertRow.timestamp.desc(), AlertRow.id.desc()).limit(limit + 1)
        rows = session.execute(q).scalars().all()
        nxt = None
        if len(rows) > limit:
            rows = rows[:limit]
            nxt = encode_cursor(rows[-1].timestamp, rows[-1].id)
        return rows, nxt


def _insert_for(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
