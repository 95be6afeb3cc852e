"""Alerts for the queue's tests and bench: built as the correlator builds them
(correlator.alerts.build_alert) and stored as it stores them (AlertStore.upsert), with
the received time set where a test needs it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from correlator.alerts import EntityRef, Match, build_alert
from correlator.rows import AlertRow
from correlator.store import AlertStore
from rules.indicator import Indicator
from sensors.observation import Observation

RECEIVED0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Spec:
    n: int  # makes the id, the addresses and the time
    value: str = ""
    kind: str = "domain"
    entity: tuple[str, str] | None = ("ent-a", "Entidad A")
    sensor: str = "sensor-1"
    confidence: int = 70
    received: datetime | None = None
    tlp: str = "clear"


def alert_doc(s: Spec) -> dict[str, Any]:
    value = s.value or f"host{s.n}.example"
    ts = 1_700_000_000.0 + s.n * 60
    o = Observation(
        timestamp=ts,
        observer=s.sensor,
        src_ip=f"10.1.{s.n // 250 % 250}.{s.n % 250 + 1}",
        dst_ip="203.0.113.9" if s.kind != "ip-dst" else value,
        src_port=40000,
        dst_port=53,
        transport="udp",
        community_id=f"1:q{s.n}",
    )
    field = {"ip-dst": "destination.ip", "url": "url.original", "sha256": "file.hash.sha256"}.get(
        s.kind, "dns.question.name"
    )
    ind = Indicator(s.kind, value, "feed", confidence=s.confidence, tlp=s.tlp)
    entity = EntityRef(*s.entity) if s.entity else None
    return build_alert(Match(o, field, value, ind), f"{s.n:032x}", 1, ts, ts, entity)


def store(session: Session, specs: list[Spec]) -> list[str]:
    """Stores the alerts; those with a `received` time get it. Their ids, in order."""
    ids = []
    for s in specs:
        doc = alert_doc(s)
        AlertStore.upsert(session, doc)
        aid = doc["event"]["id"]
        if s.received is not None:
            session.execute(
                update(AlertRow).where(AlertRow.id == aid).values(received_at=s.received)
            )
        ids.append(aid)
    return ids


def at(minutes: int) -> datetime:
    return RECEIVED0 + timedelta(minutes=minutes)
