"""Notifying the affected entities: an outbox of e-mails (SMTP) and signed webhooks,
filled in the transaction that decides to notify and emptied by a scheduled job,
so a mail server that is down delays a notice but never loses it."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.i18n import RECORD, render_mail, text
from core.netguard import TargetError, TargetPolicy
from incidents.models import IncidentEntityRow, IncidentRow, NotificationRow
from incidents.policy import Policy
from incidents.service import add_entity, get, log_change, record

log = logging.getLogger("vigia.notify")
MAX_ATTEMPTS = 5
SIGNATURE_HEADER = "X-Vigia-Signature"
TIMESTAMP_HEADER = "X-Vigia-Timestamp"
MAIL = Path(__file__).parent / "mail"  # the notices' wording, per language (jinja2)


@dataclass(frozen=True)
class Contacts:
    """Where an entity hears from the CERT (given by the registry, through the wiring)."""

    name: str
    emails: tuple[str, ...]
    webhook_url: str
    webhook_secret: str


class ContactBook(Protocol):
    """An entity's contacts (the registry's, injected by the composition root)."""

    def __call__(self, session: Session, entity_id: str, /) -> Contacts | None: ...


class Notify(Protocol):
    """Queue notices of an incident to its entities (all affected ones by default):
    what triage, the incident routes and the external reports are given."""

    def __call__(
        self,
        session: Session,
        incident_id: int,
        actor: str,
        entity_ids: list[str] | None = None,
        extra: dict[str, object] | None = None,
        /,
    ) -> int: ...


def notifier(policy: Policy, contacts: ContactBook, public_url: str) -> Notify:
    """`notify` with the installation's policy, contact book and public address."""

    def queue(
        session: Session,
        incident_id: int,
        actor: str,
        entity_ids: list[str] | None = None,
        extra: dict[str, object] | None = None,
        /,
    ) -> int:
        return notify(session, policy, contacts, incident_id, actor, entity_ids, public_url, extra)

    return queue


@dataclass(frozen=True)
class Mailer:
    host: str
    port: int
    sender: str
    starttls: bool = False
    user: str = ""
    password_file: Path | None = None
    plain_auth: bool = False  # AUTH without STARTTLS: only when an admin says so


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "timestamp.body", as the receiver recomputes it."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _payload(inc: IncidentRow, entity_id: str, reply_due: datetime, url: str) -> dict[str, object]:
    """What the entity is told: no summary beyond what its TLP allows it."""
    return {
        "incident": inc.id,
        "entity": entity_id,
        "title": inc.title,
        "summary": "" if inc.tlp == "red" else inc.summary,
        "priority": inc.priority,
        "status": inc.status,
        "tlp": inc.tlp.upper(),
        "pap": inc.pap.upper(),
        "rsit": f"{inc.rsit_class}/{inc.rsit_type}" if inc.rsit_class else None,
        "reply_due": reply_due.isoformat(),
        "url": f"{url.rstrip('/')}/console/incidentes/{inc.id}" if url else "",
    }


def notify(
    session: Session,
    policy: Policy,
    contacts: ContactBook,
    incident_id: int,
    actor: str,
    entity_ids: list[str] | None = None,
    public_url: str = "",
    extra: dict[str, object] | None = None,
) -> int:
    """Queue a notice to each named entity (all affected ones by default); starts
    each entity's reply clock. Returns the messages queued. `extra` goes into the
    notice as it is (an external report's advice and host list, say)."""
    inc = get(session, incident_id)
    q = select(IncidentEntityRow).where(IncidentEntityRow.incident_id == inc.id)
    if entity_ids:
        added = [add_entity(session, inc, e) for e in entity_ids]
        if any(added):  # for the query below, also when the caller holds autoflush off
            session.flush()
        q = q.where(IncidentEntityRow.entity_id.in_(entity_ids))
    now, queued = utcnow(), 0
    for ent in session.execute(q).scalars():
        book = contacts(session, ent.entity_id)
        channels = []
        if book is not None:
            channels = [("email", e) for e in book.emails] + (
                [("webhook", book.webhook_url)] if book.webhook_url else []
            )
        if not channels:
            no_contact = text(RECORD, "notify.no_contact")
            record(session, inc, "notification", actor, body=no_contact, entity_id=ent.entity_id)
            continue
        ent.notified_at = now
        ent.reply_due = policy.due(inc.priority, "entity_reply", now)
        payload = {**_payload(inc, ent.entity_id, ent.reply_due, public_url), **(extra or {})}
        for channel, target in channels:
            session.add(
                NotificationRow(
                    incident_id=inc.id,
                    entity_id=ent.entity_id,
                    channel=channel,
                    target=target,
                    status="pending",
                    attempts=0,
                    last_error="",
                    created_at=now,
                    payload=payload,
                )
            )
            queued += 1
        record(
            session,
            inc,
            "notification",
            actor,
            entity_id=ent.entity_id,
            channels=[c for c, _ in channels],
        )
        log_change(session, actor, "notify", inc.id, entity=ent.entity_id, channels=len(channels))
    return queued


def recipients(
    session: Session, contacts: ContactBook, incident_id: int
) -> list[dict[str, object]]:
    """What a notice of the incident would do, before it is sent: per affected entity,
    the addresses and webhook it goes to (none: it is only recorded), and when the
    entity was last notified."""
    q = select(IncidentEntityRow).where(IncidentEntityRow.incident_id == incident_id)
    out: list[dict[str, object]] = []
    for ent in session.execute(q.order_by(IncidentEntityRow.entity_id)).scalars():
        book = contacts(session, ent.entity_id)
        out.append(
            {
                "entity": ent.entity_id,
                "name": book.name if book else ent.entity_id,
                "emails": list(book.emails) if book else [],
                "webhook": book.webhook_url if book else "",
                "notified_at": ent.notified_at.isoformat() if ent.notified_at else None,
            }
        )
    return out


def send_mail(mailer: Mailer, to: str, subject: str, text: str) -> None:
    """One plain-text message through the configured SMTP server."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = mailer.sender, to, subject
    msg.set_content(text)
    _send(mailer, msg)


def _send(mailer: Mailer, msg: EmailMessage) -> None:
    login = bool(mailer.user and mailer.password_file)
    if login and not mailer.starttls and not mailer.plain_auth:
        # Settings refuse this at start-up; a Mailer built elsewhere is refused here.
        raise RuntimeError("SMTP credentials are never sent without STARTTLS")
    with smtplib.SMTP(mailer.host, mailer.port, timeout=10) as smtp:
        if mailer.starttls:
            # The server's certificate is checked against its name (smtplib's own
            # default context checks nothing).
            smtp.starttls(context=ssl.create_default_context())
        if login and mailer.password_file:
            smtp.login(mailer.user, mailer.password_file.read_text().strip())
        smtp.send_message(msg)


def webhook_changed(
    mailer: Mailer | None, to: str, entity_id: str, before: str, after: str, actor: str
) -> bool:
    """Tell the CERT that an entity pointed its notices elsewhere (a stolen entity
    token could redirect them). Logged always; mailed when SMTP is set. True if mailed."""
    log.warning("entity %s changed its webhook from %r to %r (%s)", entity_id, before, after, actor)
    if mailer is None:
        return False
    try:
        mail = render_mail(
            MAIL,
            "webhook_changed",
            "es",
            entity_id=entity_id,
            before=before,
            after=after,
            actor=actor,
        )
        send_mail(mailer, to, mail.subject, mail.body)
    except (OSError, smtplib.SMTPException, RuntimeError) as exc:
        log.warning("the notice of %s's webhook change was not sent: %s", entity_id, exc)
        return False
    return True


def _email(mailer: Mailer, to: str, payload: dict[str, object]) -> None:
    """The notice as its template words it (incidents/mail/notice.<lang>.txt), in the
    payload's language ("lang"; Spanish unless said otherwise)."""
    rsit_class, _, rsit_type = str(payload.get("rsit") or "").partition("/")
    report = payload.get("report")
    mail = render_mail(
        MAIL,
        "notice",
        str(payload.get("lang", "es")),
        n=payload,
        rsit_class=rsit_class,
        rsit_type=rsit_type if rsit_type not in ("", "None") else "",
        report=report if isinstance(report, dict) else None,
    )
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = mailer.sender, to, mail.subject
    msg.set_content(mail.body)
    if isinstance(report, dict):
        msg.add_attachment(
            str(report["csv"]).encode(),
            maintype="text",
            subtype="csv",
            filename=str(report["csv_name"]),
        )
    _send(mailer, msg)


def _webhook(url: str, secret: str, payload: dict[str, object], targets: TargetPolicy) -> None:
    # Resolved and checked now, then connected to that very address (DNS rebinding):
    # the name still goes in Host and in TLS SNI, and the certificate is checked
    # against it. No redirects, no proxies from the environment.
    target = targets.resolve(url)
    body = json.dumps({"type": "incident.notification", **payload}, sort_keys=True).encode()
    ts = str(int(time.time()))
    pinned = httpx.URL(url).copy_with(host=target.address)
    headers = {
        "Content-Type": "application/json",
        "Host": httpx.URL(url).netloc.decode("ascii"),
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign(secret, ts, body),
    }
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=10) as client:
        resp = client.post(
            pinned, content=body, headers=headers, extensions={"sni_hostname": target.host}
        )
    if resp.status_code >= 300:
        raise RuntimeError(f"webhook answered {resp.status_code}")


def deliver(
    session: Session,
    mailer: Mailer | None,
    contacts: ContactBook,
    targets: TargetPolicy | None = None,
) -> tuple[int, int]:
    """Send what waits in the outbox; each failure is counted and retried next run,
    up to MAX_ATTEMPTS. Webhooks go only where `targets` allows (public https by
    default). Returns (sent, failed)."""
    targets = targets or TargetPolicy()
    pending = session.execute(
        select(NotificationRow)
        .where(NotificationRow.status == "pending")
        .order_by(NotificationRow.id)
    ).scalars()
    sent = failed = 0
    for n in pending:
        n.attempts += 1
        try:
            if n.channel == "email":
                if mailer is None:
                    raise RuntimeError("no SMTP server configured (VIGIA_SMTP_HOST)")
                _email(mailer, n.target, n.payload)
            else:
                book = contacts(session, n.entity_id)
                if book is None or not book.webhook_secret:
                    raise RuntimeError("the entity has no webhook secret")
                _webhook(n.target, book.webhook_secret, n.payload, targets)
        except (
            OSError,
            smtplib.SMTPException,
            httpx.HTTPError,
            RuntimeError,
            TargetError,
        ) as exc:
            n.last_error = str(exc)[:500]
            if n.attempts >= MAX_ATTEMPTS:
                n.status = "failed"
            failed += 1
            log.warning("notification %d (%s) failed: %s", n.id, n.channel, exc)
            continue
        n.status, n.sent_at, n.last_error = "sent", utcnow(), ""
        sent += 1
    return sent, failed
