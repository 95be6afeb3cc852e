"""The embedded stores: indicators, ingested batches, observations and alerts (SQL).

The same code runs on SQLite and PostgreSQL. Alerts are upserted by their
deterministic id: a repeat of the same match in the same window adds to
`count` instead of making a second alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    delete,
    false,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.clock import parse_iso, utcnow
from core.cursor import decode_cursor, encode_cursor
from core.db import Base, UtcDateTime
from correlator.alerts import alert_tlp
from rules.indicator import Indicator


class IndicatorRow(Base):
    __tablename__ = "indicators"
    __table_args__ = (
        UniqueConstraint("type", "value", "provider", name="uq_indicator"),
        # TAXII pages a collection (one TLP) by (date added, id): a keyset, not an offset.
        Index("ix_indicators_tlp_loaded", "tlp", "loaded_at", "id"),
        # The whitelisted rows only (few): a restart and a retro-hunt read them without
        # a pass over a million rows (0.15 s of CPU on SQLite). Its predicate is the
        # query's own text (IndicatorStore.whitelisted), so SQLite sees it applies.
        Index(
            "ix_indicators_whitelist",
            "whitelist",
            sqlite_where=text("whitelist IS 1"),
            postgresql_where=text("whitelist IS true"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(200))
    to_ids: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[int] = mapped_column(Integer)
    tlp: Mapped[str] = mapped_column(String(20))
    event: Mapped[str] = mapped_column(String(200))
    threat_level: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    expires: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    comment: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The indicator version that last wrote the row: live indexes read what changed.
    changed_in: Mapped[int] = mapped_column(BigInteger, index=True, server_default="0")
    # Zeek intel's meta.whitelist, meta.if_in (Intel::Where names, comma-joined) and
    # every other meta.* column ({name: text}; NULL when none).
    whitelist: Mapped[bool] = mapped_column(Boolean, server_default=false())
    if_in: Mapped[str] = mapped_column(String(500), server_default="")
    extra: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)

    def to_indicator(self) -> Indicator:
        return Indicator(
            type=self.type,
            value=self.value,
            provider=self.provider,
            to_ids=self.to_ids,
            confidence=self.confidence,
            tlp=self.tlp,
            event=self.event,
            threat_level=self.threat_level,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            expires=self.expires,
            comment=self.comment,
            whitelist=self.whitelist,
            if_in=tuple(self.if_in.split(",")) if self.if_in else (),
            extra=tuple(sorted(self.extra.items())) if self.extra else (),
        )


class IndicatorVersion(Base):
    """One row: bumped by every change to the indicators, read by every live index."""

    __tablename__ = "indicator_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
    # The last version that removed indicators: a live index older than it rebuilds
    # (a removal leaves no row to read).
    rebuild: Mapped[int] = mapped_column(BigInteger, server_default="0")


class BatchRow(Base):
    """An ingested batch: its id makes a retried batch a no-op."""

    __tablename__ = "ingest_batches"

    batch_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    observer: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    observations: Mapped[int] = mapped_column(Integer)
    alerts: Mapped[int] = mapped_column(Integer)


class ObservationRow(Base):
    """Observations kept for retro-hunt."""

    __tablename__ = "observations"
    __table_args__ = (
        # PostgreSQL only (correlator.sqlkeys): a retro-hunt's candidates by their keys,
        # and the rows stored before keys were written, read whole.
        Index("ix_observations_match_keys", "match_keys", postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
        Index("ix_observations_unkeyed", "id", postgresql_where=text("match_keys IS NULL")).ddl_if(
            dialect="postgresql"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    observer: Mapped[str] = mapped_column(String(200))
    batch_id: Mapped[str] = mapped_column(String(100))
    doc: Mapped[dict[str, Any]] = mapped_column(JSON)
    # bigint[] on PostgreSQL; never written on SQLite, which hunts over every document.
    match_keys: Mapped[list[int] | None] = mapped_column(
        JSON().with_variant(postgresql.ARRAY(BigInteger), "postgresql"), nullable=True
    )


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        # The queue's first page: newest received, within an entity, a status or a sensor.
        Index("ix_alerts_received", "received_at", "id"),
        Index("ix_alerts_entity_received", "entity_id", "received_at", "id"),
        Index("ix_alerts_status_received", "status", "received_at", "id"),
        Index("ix_alerts_observer_received", "observer", "received_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # event.id
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    observer: Mapped[str] = mapped_column(String(200))
    matched_type: Mapped[str] = mapped_column(String(32))
    indicator_type: Mapped[str] = mapped_column(String(64), index=True)
    entity_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    tlp: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    # Set by the incidents package when it links the alert (status "in_incident").
    incident_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    count: Mapped[int] = mapped_column(Integer)
    severity: Mapped[int] = mapped_column(Integer)
    doc: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The console's queue (incidents.alert_queue; migration 0019): when the centre
    # stored it, who works it, and what it filters and sorts by (queue_columns).
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    assignee: Mapped[str | None] = mapped_column(String(200), nullable=True)
    atomic: Mapped[str] = mapped_column(Text, default="")
    source_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    destination_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    search_text: Mapped[str] = mapped_column(Text, default="")

    def to_ecs(self) -> dict[str, Any]:
        """The stored document with the fields that change after insert brought up to date."""
        doc = dict(self.doc)
        event = dict(doc["event"])
        event["count"] = self.count
        last = self.last_seen
        event["end"] = last.strftime("%Y-%m-%dT%H:%M:%S.") + f"{last.microsecond // 1000:03d}Z"
        doc["event"] = event
        doc["vigia"] = {"status": self.status, "incident": self.incident_id}
        return doc


def queue_columns(alert: dict[str, Any]) -> dict[str, Any]:
    """What the console's queue filters and sorts an alert by: the observed value, both
    addresses, and the free text it is found by (the value, every indicator's value,
    the YARA rule's name and the addresses, lower case)."""
    enr = alert["threat"]["enrichments"]
    atomic = str(enr[0]["matched"]["atomic"])
    src = (alert.get("source") or {}).get("ip")
    dst = (alert.get("destination") or {}).get("ip")
    parts = [atomic, *(str(e["indicator"]["value"]) for e in enr)]
    parts += [str(alert["rule"]["name"])] if "rule" in alert else []
    parts += [p for p in (src, dst) if p]
    return {
        "atomic": atomic,
        "source_ip": src,
        "destination_ip": dst,
        "search_text": "\n".join(dict.fromkeys(parts)).lower(),
    }


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
