"""Incident records: the incident, the entities it names, its timeline entries,
tasks, observables, SLA breaches and the notification outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, UtcDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text)
    rsit_class: Mapped[str | None] = mapped_column(String(60), nullable=True)
    rsit_type: Mapped[str | None] = mapped_column(String(60), nullable=True)
    tlp: Mapped[str] = mapped_column(String(20))
    pap: Mapped[str] = mapped_column(String(10))
    ncciss: Mapped[int] = mapped_column(Integer)
    priority: Mapped[str] = mapped_column(String(2), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    resolution: Mapped[str | None] = mapped_column(String(40), nullable=True)
    merged_into: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The analyst who works it, as an actor ("analyst:ana"); None while unassigned.
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_alert_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    contained_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    due_acknowledge: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    due_contain: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    due_resolve: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Optimistic locking: every UPDATE checks and bumps it (SQLAlchemy's version counter).
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it)


class AlertKeyRow(Base):
    """What an alert can share with another (an indicator value, a MISP event, the
    host), as a digest: grouping finds the incident sharing one by index, not by
    reading every open incident's alerts."""

    __tablename__ = "alert_keys"

    alert_id: Mapped[str] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class IncidentEntityRow(Base):
    """An affected entity, with the clock of its notification and its answer."""

    __tablename__ = "incident_entities"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    entity_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    reply_due: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    replied_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class IncidentEntryRow(Base):
    """A timeline entry: a note, a reply, a state change, a notification, a breach."""

    __tablename__ = "incident_entries"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    kind: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    entity_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    tlp: Mapped[str] = mapped_column(String(20))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class IncidentTaskRow(Base):
    __tablename__ = "incident_tasks"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(300))
    assignee: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it)


class IncidentObservableRow(Base):
    """What was seen, as MISP types: from linked alerts and added by hand."""

    __tablename__ = "incident_observables"
    __table_args__ = (
        UniqueConstraint("incident_id", "type", "value"),
        Index("ix_incident_observables_added", "added_at", "id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    tlp: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))  # alert | analyst
    # When it joined the incident: TAXII's date_added (incidents.taxii pages by it, id).
    added_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class SlaBreachRow(Base):
    """A due time that passed unmet, found by the scheduled job; kept for the metrics."""

    __tablename__ = "sla_breaches"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    clock: Mapped[str] = mapped_column(String(20), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" for the CERT
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    found_at: Mapped[datetime] = mapped_column(UtcDateTime())


class NotificationRow(Base):
    """The outbox: one message to one entity on one channel, sent by the scheduler."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    entity_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(10))  # email | webhook
    target: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10), index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class MispShareRow(Base):
    """The MISP outbox: an incident's indicators as a MISP event, pushed by the
    scheduler's MISP job (incidents.mispshare), retried until it lands."""

    __tablename__ = "misp_shares"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    event_uuid: Mapped[str] = mapped_column(String(36))
    requested_by: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
