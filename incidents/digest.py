"""The daily digest: notices an entity asked to receive once a day (incidents/prefs.py)
are held here instead of the outbox, and one mail per entity and day gathers them,
each incident's host list attached as its own CSV.

`hold` is what the external reports' notifier calls for a digest entity; `send`
runs from the scheduler (vigia/scheduler.py, job "notify-digest") for the days
before today, or for today too when asked (`through`). A mail server that is down
leaves the day's notices held for the next run; once sent, each incident's entity
gets its reply clock started and one outbox row per address records what went."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.clock import utcnow
from core.db import Base, UtcDateTime
from core.i18n import render_mail
from incidents import notify
from incidents.models import IncidentEntityRow, IncidentRow, NotificationRow
from incidents.policy import Policy
from incidents.service import record

_ID = BigInteger().with_variant(Integer, "sqlite")


class DigestItemRow(Base):
    """One notice held for an entity's digest of `day` (UTC)."""

    __tablename__ = "notify_digest"
    __table_args__ = (Index("ix_notify_digest_waiting", "sent_at", "entity_id", "day"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(10))
    incident_id: Mapped[int] = mapped_column(BigInteger())
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


def hold(
    session: Session, incident_id: int, entity_id: str, extra: dict[str, Any], actor: str
) -> int:
    """Keep the notice for the entity's digest of today; 0 messages queued now. A
    later notice of the same incident the same day replaces the held one (it carries
    the whole host list)."""
    inc = session.get(IncidentRow, incident_id)
    if inc is None:
        return 0
    now = utcnow()
    day = now.date().isoformat()
    payload = {
        "incident": inc.id,
        "title": inc.title,
        "priority": inc.priority,
        "tlp": inc.tlp.upper(),
        "rsit": f"{inc.rsit_class}/{inc.rsit_type}" if inc.rsit_class else "",
        **extra,
    }
    held = session.execute(
        select(DigestItemRow).where(
            DigestItemRow.entity_id == entity_id,
            DigestItemRow.incident_id == incident_id,
            DigestItemRow.day == day,
            DigestItemRow.sent_at.is_(None),
        )
    ).scalar_one_or_none()
    if held is None:
        session.add(
            DigestItemRow(
                entity_id=entity_id,
                day=day,
                incident_id=incident_id,
                payload=payload,
                created_at=now,
            )
        )
    else:
        held.payload, held.created_at = payload, now
    record(session, inc, "notification", actor, entity_id=entity_id, channels=["digest"])
    return 0


@dataclass(frozen=True)
class Sent:
    mails: int
    failed: int


def _mail(mailer: notify.Mailer, to: str, day: str, items: Sequence[DigestItemRow]) -> None:
    rows = [i.payload for i in items]
    mail = render_mail(notify.MAIL, "digest", "es", day=day, items=rows, n=len(rows))
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = mailer.sender, to, mail.subject
    msg.set_content(mail.body)
    for p in rows:
        report = p.get("report")
        if isinstance(report, dict) and report.get("csv"):
            msg.add_attachment(
                str(report["csv"]).encode(),
                maintype="text",
                subtype="csv",
                filename=str(report["csv_name"]),
            )
    notify._send(mailer, msg)  # the outbox's sender: STARTTLS and login rules in one place


def send(
    session: Session,
    mailer: notify.Mailer | None,
    contacts: notify.ContactBook,
    policy: Policy,
    through: date | None = None,
    actor: str = "system:digest",
) -> Sent:
    """One mail per entity and day held, for the days before today (or up to
    `through`, included)."""
    last = through or date.fromordinal(utcnow().date().toordinal() - 1)
    waiting = session.execute(
        select(DigestItemRow)
        .where(DigestItemRow.sent_at.is_(None), DigestItemRow.day <= last.isoformat())
        .order_by(DigestItemRow.entity_id, DigestItemRow.day, DigestItemRow.incident_id)
    ).scalars()
    groups: dict[tuple[str, str], list[DigestItemRow]] = {}
    for item in waiting:
        groups.setdefault((item.entity_id, item.day), []).append(item)
    mails = failed = 0
    for (entity_id, day), items in groups.items():
        book = contacts(session, entity_id)
        if book is None or not book.emails or mailer is None:
            failed += 1
            continue
        try:
            for to in book.emails:
                _mail(mailer, to, day, items)
        except (OSError, smtplib.SMTPException, RuntimeError):
            failed += 1
            continue
        mails += len(book.emails)
        now = utcnow()
        for item in items:
            item.sent_at = now
            _started(session, policy, item, now, book.emails, actor)
    return Sent(mails, failed)


def _started(
    session: Session,
    policy: Policy,
    item: DigestItemRow,
    now: datetime,
    emails: Sequence[str],
    actor: str,
) -> None:
    """The incident's entity was told: its reply clock starts, the outbox records it."""
    inc = session.get(IncidentRow, item.incident_id)
    ent = session.get(IncidentEntityRow, (item.incident_id, item.entity_id))
    if inc is None:
        return
    if ent is not None:
        ent.notified_at = now
        ent.reply_due = policy.due(inc.priority, "entity_reply", now)
    for to in emails:
        session.add(
            NotificationRow(
                incident_id=inc.id,
                entity_id=item.entity_id,
                channel="email",
                target=to,
                status="sent",
                attempts=1,
                last_error="",
                created_at=item.created_at,
                sent_at=now,
                payload={"digest": item.day, "incident": inc.id},
            )
        )
    record(session, inc, "notification", actor, entity_id=item.entity_id, digest=item.day)
