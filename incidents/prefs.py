"""How each entity wants to hear of incidents, per RSIT class: at once (one mail per
incident, the default) or in a daily digest (one mail a day gathering them).

Kept beside the registry, one row per (entity, class) with "*" for the entity's
default; set through `PUT /api/v1/entities/{id}/notification-preferences` or
`vigia entities notifications`, audited. The external reports' notices honour it
(vigia/reports.py hands digest ones to incidents/digest.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import audit
from core.clock import utcnow
from core.db import Base, UtcDateTime
from incidents import taxonomy
from incidents.errors import IncidentError

IMMEDIATE, DIGEST = "immediate", "digest"
MODES = (IMMEDIATE, DIGEST)
ANY = "*"


class NotifyPrefRow(Base):
    __tablename__ = "notify_prefs"

    entity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rsit_class: Mapped[str] = mapped_column(String(60), primary_key=True)  # or "*"
    mode: Mapped[str] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


def get(session: Session, entity_id: str) -> dict[str, Any]:
    """{"default": mode, "classes": {rsit class: mode}}; immediate when nothing is set."""
    rows = session.execute(
        select(NotifyPrefRow.rsit_class, NotifyPrefRow.mode).where(
            NotifyPrefRow.entity_id == entity_id
        )
    ).all()
    held = dict(rows)
    default = held.pop(ANY, IMMEDIATE)
    return {"default": default, "classes": dict(sorted(held.items()))}


def mode_for(session: Session, entity_id: str, rsit_class: str | None) -> str:
    prefs = get(session, entity_id)
    return str(prefs["classes"].get(rsit_class or "", prefs["default"]))


def put(
    session: Session, entity_id: str, default: str, classes: dict[str, str], actor: str
) -> dict[str, Any]:
    """Replace the entity's preferences; each class must be an RSIT class."""
    known = taxonomy.rsit().classes
    for cls, mode in [(ANY, default), *classes.items()]:
        if cls != ANY and cls not in known:
            raise IncidentError("rsit.class_invalid", rsit_class=cls, allowed=", ".join(known))
        if mode not in MODES:
            raise IncidentError("incident.error", text=f"{cls}: immediate or digest, not {mode}")
    before = get(session, entity_id)
    session.execute(delete(NotifyPrefRow).where(NotifyPrefRow.entity_id == entity_id))
    now = utcnow()
    session.add(NotifyPrefRow(entity_id=entity_id, rsit_class=ANY, mode=default, updated_at=now))
    for cls, mode in classes.items():
        session.add(NotifyPrefRow(entity_id=entity_id, rsit_class=cls, mode=mode, updated_at=now))
    session.flush()
    after = get(session, entity_id)
    audit.append(
        session,
        actor,
        "entity.notify_prefs",
        "entity",
        entity_id,
        {"before": before, "after": after},
    )
    return after
