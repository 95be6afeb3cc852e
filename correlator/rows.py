"""The correlator's SQL tables as ORM rows: indicators and their version, ingested
batches, observations kept for retro-hunt, and alerts with their queue columns.

The same tables on SQLite and PostgreSQL; the queries over them are in
correlator.store.
"""

from __future__ import annotations

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
    false,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime
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
