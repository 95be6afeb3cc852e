"""Certificates: issued by policy, then expired, suspended, revoked, reinstated,
renewed; reminders before expiry; observation while a high-priority incident stays
open; and an entity's certification state for the dashboard."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification.errors import CertConflict, CertError, CertNotFound
from certification.models import AssessmentRow, CertificateRow
from certification.policy import CertPolicy, OpenIncidents
from core import audit

MAIL = Path(__file__).parent / "mail"  # the reminders' wording, per language (jinja2)

# An entity's state, as the dashboard counts it.
STATES = (
    "not_started",
    "in_progress",
    "submitted",
    "in_review",
    "certified",
    "conditional",
    "expired",
    "suspended",
    "revoked",
)
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out over the phone


def new_id() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return f"VIG-{body[:4]}-{body[4:8]}-{body[8:12]}-{body[12:]}"


def _log(session: Session, actor: str, action: str, c: CertificateRow, **detail: object) -> None:
    audit.append(session, actor, f"certificate.{action}", "certificate", c.id, dict(detail))


def issue(
    session: Session,
    a: AssessmentRow,
    level: str,
    score: float,
    policy: CertPolicy,
    actor: str,
    now: datetime,
) -> CertificateRow:
    """A new certificate; a still-valid earlier one of the entity ends (renewal)."""
    c = CertificateRow(
        id=new_id(),
        entity_id=a.entity_id,
        assessment_id=a.id,
        level=level,
        status="valid",
        score=score,
        issued_at=now,
        valid_until=now + policy.validity(level),
        observation="",
        reason="",
        reminders=[],
        updated_at=now,
    )
    for old in current(session, a.entity_id, now, include_suspended=True):
        old.reason = f"renovado por {c.id}"
        _end(old, "expired", now)
        _log(session, actor, "renewed", old, by=c.id)
    session.add(c)
    session.flush()
    _log(
        session, actor, "issue", c, entity=a.entity_id, level=level, until=c.valid_until.isoformat()
    )
    return c


def current(
    session: Session, entity_id: str, now: datetime, include_suspended: bool = False
) -> list[CertificateRow]:
    states = ("valid", "suspended") if include_suspended else ("valid",)
    q = select(CertificateRow).where(
        CertificateRow.entity_id == entity_id,
        CertificateRow.status.in_(states),
        CertificateRow.valid_until > now,
    )
    return list(session.execute(q).scalars())


def get(session: Session, cert_id: str, entity_id: str | None = None) -> CertificateRow:
    c = session.get(CertificateRow, cert_id)
    if c is None or (entity_id is not None and c.entity_id != entity_id):
        raise CertNotFound("certificate.not_found", cert_id=cert_id)
    return c


def change(
    session: Session, cert_id: str, action: str, reason: str, actor: str, now: datetime
) -> CertificateRow:
    """suspend (valid → suspended), reinstate (suspended → valid), revoke (→ revoked)."""
    c = get(session, cert_id)
    moves = {"suspend": ("valid", "suspended"), "reinstate": ("suspended", "valid")}
    if action == "revoke":
        if c.status == "revoked":
            raise CertConflict("certificate.revoked", cert_id=c.id)
        to = "revoked"
    elif action in moves:
        frm, to = moves[action]
        if c.status != frm:
            raise CertConflict(
                "certificate.wrong_state", cert_id=c.id, status=c.status, action=action, needs=frm
            )
        if action == "reinstate" and c.valid_until <= now:
            raise CertConflict("certificate.expired_meanwhile", cert_id=c.id)
    else:
        raise CertError("certificate.action_invalid")
    if action != "reinstate" and not reason.strip():
        raise CertError("certificate.reason_needed", action=action)
    c.reason = reason.strip()
    _end(c, to, now)
    _log(session, actor, action, c, reason=reason.strip())
    return c


def _end(c: CertificateRow, to: str, now: datetime) -> None:
    """Move a certificate to `to`. A suspended one that expires, is revoked or is
    renewed keeps its updated_at: that is when it stopped being in force, which the
    national trend reads as the end of its span (progress._span, progress_state);
    overwriting it counted the months it was suspended as covered. The progress
    cache still sees the change: its fingerprint counts suspended certificates."""
    if c.status != "suspended" or to == "valid":
        c.updated_at = now
    c.status = to


def expire_due(session: Session, now: datetime, actor: str) -> list[str]:
    q = select(CertificateRow).where(
        CertificateRow.status.in_(("valid", "suspended")), CertificateRow.valid_until <= now
    )
    gone = []
    for c in session.execute(q).scalars():
        _end(c, "expired", now)
        _log(session, actor, "expire", c)
        gone.append(c.id)
    return gone


@dataclass(frozen=True)
class Reminder:
    certificate: str
    entity_id: str
    days_left: int
    valid_until: datetime


def due_reminders(
    session: Session, policy: CertPolicy, now: datetime, actor: str
) -> list[Reminder]:
    """Certificates reaching a reminder mark (60, 30, 7 days before expiry): each
    mark once, the most recent one passed."""
    q = select(CertificateRow).where(
        CertificateRow.status == "valid", CertificateRow.valid_until > now
    )
    out = []
    for c in session.execute(q).scalars():
        left = (c.valid_until - now).days
        marks = [d for d in policy.reminder_days if left < d and d not in c.reminders]
        if not marks:
            continue
        c.reminders = sorted({*c.reminders, *marks}, reverse=True)
        _log(session, actor, "reminder", c, days_left=left)
        out.append(Reminder(c.id, c.entity_id, left, c.valid_until))
    return out


def observe(
    session: Session, policy: CertPolicy, open_incidents: OpenIncidents, now: datetime, actor: str
) -> int:
    """Put certificates under observation while their entity has a blocking incident
    open, and lift it when that is resolved. Returns the changes made."""
    changed = 0
    for c in session.execute(
        select(CertificateRow).where(CertificateRow.status == "valid")
    ).scalars():
        blocking = policy.blocking(open_incidents(session, c.entity_id), now)
        text = ", ".join(f"incidente #{i.id} ({i.priority})" for i in blocking)
        if text != c.observation:
            c.observation, c.updated_at = text, now
            _log(session, actor, "observation" if text else "observation.lifted", c, why=text)
            changed += 1
    return changed


class _Cert(Protocol):
    """What state_of reads of a certificate (an ORM row or a plain result row)."""

    @property
    def status(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def valid_until(self) -> datetime: ...


class _Assessment(Protocol):
    @property
    def status(self) -> str: ...


def state_of(cert: _Cert | None, assessment: _Assessment | None, now: datetime) -> str:
    """One entity's certification state from its newest certificate and assessment."""
    if cert is not None:
        if cert.status == "valid" and cert.valid_until > now:
            return cert.level
        if cert.status in ("suspended", "revoked"):
            return cert.status
    if assessment is not None and assessment.status != "decided":
        return {"returned": "in_progress"}.get(assessment.status, assessment.status)
    if cert is not None:
        return "expired"
    return "in_progress" if assessment is not None else "not_started"


def search(session: Session, entity_id: str | None, status: str | None) -> list[CertificateRow]:
    """Newest first, at most 1 000."""
    q = select(CertificateRow).order_by(CertificateRow.issued_at.desc()).limit(1000)
    if entity_id:
        q = q.where(CertificateRow.entity_id == entity_id)
    if status:
        q = q.where(CertificateRow.status == status)
    return list(session.execute(q).scalars())
