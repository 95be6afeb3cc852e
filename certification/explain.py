"""The score explained, control by control, and what the policy makes of it.

One place answers the questions the self-assessment and the review pages ask:
how each control counts in the score and why (implemented without current
evidence is half), what blocks certification under the current policy, the
checklist before submitting, the decision the policy would give (the CERT's
preview before it confirms), and what the entity has to fix for its next round.

Every item is a message id of the catalogues with its parameters: the console
words it in the reader's language."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from certification import assessments, catalogue, scoring
from certification.catalogue import Catalogue, Control
from certification.models import AssessmentRow
from certification.policy import CertPolicy, OpenIncident, OpenIncidents

EXPIRING_DAYS = 30  # evidence that ends sooner is flagged on the page

# How a control counts: (message id, the value it adds out of 1).
UNANSWERED, FULL, HALF_NO_EVIDENCE, HALF, ZERO, REJECTED, EXCLUDED = (
    "unanswered",
    "full",
    "half_no_evidence",
    "half",
    "zero",
    "rejected",
    "excluded",
)


@dataclass(frozen=True)
class Item:
    """A sentence for the page: a catalogue id and its parameters."""

    key: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Counted:
    """How one control counts in the score."""

    kind: str  # one of the constants above
    value: float | None  # 1, 0.5, 0 or None (left out)
    weight: int  # 2 mandatory, 1 recommended
    meets_mandatory: bool  # a mandatory control that is implemented with current evidence


def count(c: Control, a: scoring.Answer | None, today: date) -> Counted:
    w = 2 if c.mandatory else 1
    if a is None:
        return Counted(UNANSWERED, 0.0, w, False)
    v = scoring.value(a, today)
    if v is None:
        return Counted(EXCLUDED, None, w, True)
    if a.review == "rejected":
        kind = REJECTED
    elif a.answer == "implemented":
        kind = FULL if v == 1.0 else HALF_NO_EVIDENCE
    else:
        kind = HALF if a.answer == "partial" else ZERO
    return Counted(kind, v, w, v >= 1.0)


@dataclass
class Explained:
    """An assessment's score explained and what stands between it and a certificate."""

    score: scoring.Score
    counted: dict[str, Counted]
    blockers: list[Item]  # what keeps the certificate from being issued, as things stand
    checklist: list[tuple[bool, Item]]  # before submitting: (done, what)
    outcome: str  # certified | conditional | denied: the policy on the answers as they are
    fixes: dict[str, list[Item]]  # per control: what to do for the next round
    expiring: dict[int, bool]  # evidence id → ends within EXPIRING_DAYS
    pending: list[str]  # answers the CERT has not reviewed yet
    incidents: list[OpenIncident]  # open P1/P2 past the grace period


def _answers(session: Session, a: AssessmentRow) -> dict[str, scoring.Answer]:
    until: dict[str, list[date]] = {}
    for e in assessments.evidence_of(session, a):
        until.setdefault(e.control_id, []).append(e.expires_on)
    return {
        cid: scoring.Answer(r.answer, r.review, tuple(until.get(cid, ())))
        for cid, r in assessments.answers_of(session, a).items()
    }


def _pct(v: float) -> str:
    return f"{v:.0%}".replace("%", " %")


def _ids(controls: list[str]) -> str:
    return ", ".join(controls)


def _blockers(
    s: scoring.Score, policy: CertPolicy, incidents: list[OpenIncident]
) -> tuple[str, list[Item]]:
    """Why the policy would not certify fully (its outcome, as policy.decide gives it)."""
    items = [
        Item(
            "explain.block.incident",
            {"incident_id": i.id, "priority": i.priority, "since": f"{i.opened_at:%Y-%m-%d}"},
        )
        for i in incidents
    ]
    if s.overall is None:
        return "denied", [*items, Item("explain.block.nothing_applicable")]
    if s.mandatory_unmet:
        items.append(
            Item(
                "explain.block.mandatory",
                {"count": len(s.mandatory_unmet), "controls": _ids(s.mandatory_unmet)},
            )
        )
    if s.overall < policy.min_score:
        items.append(
            Item(
                "explain.block.score",
                {
                    "score": _pct(s.overall),
                    "minimum": _pct(policy.min_score),
                    "conditional": _pct(policy.conditional_min_score),
                },
            )
        )
    if incidents:
        return "denied", items
    if not items:
        return "certified", items
    return ("conditional" if s.overall >= policy.conditional_min_score else "denied"), items


def _fixes(
    cat: Catalogue,
    answers: dict[str, scoring.Answer],
    counted: dict[str, Counted],
    comments: dict[str, str],
) -> dict[str, list[Item]]:
    out: dict[str, list[Item]] = {}
    for c in cat.controls:
        k, items = counted[c.id], []
        if k.kind == REJECTED:
            items.append(Item("explain.fix.rejected", {"comment": comments.get(c.id, "")}))
        if k.kind == UNANSWERED:
            items.append(Item("explain.fix.answer"))
        elif k.kind == HALF_NO_EVIDENCE:
            items.append(Item("explain.fix.evidence"))
        elif c.mandatory and not k.meets_mandatory and k.kind != REJECTED:
            items.append(Item("explain.fix.mandatory"))
        if items:
            out[c.id] = items
    return out


def explain(
    session: Session,
    a: AssessmentRow,
    policy: CertPolicy,
    open_incidents: OpenIncidents,
    now: datetime,
) -> Explained:
    today = now.date()
    cat = catalogue.get(session, a.catalogue_version)
    answers = _answers(session, a)
    rows = assessments.answers_of(session, a)
    s = scoring.score(cat, answers, today)
    counted = {c.id: count(c, answers.get(c.id), today) for c in cat.controls}
    held = open_incidents(session, a.entity_id)
    incidents = policy.blocking(held, now)
    _, blockers = _blockers(s, policy, incidents)
    outcome = policy.decide(s, held, now).level or "denied"  # the policy itself decides
    unanswered = [c.id for c in cat.controls if c.id not in answers]
    soon = today + timedelta(days=EXPIRING_DAYS)
    expiring = {e.id: today <= e.expires_on <= soon for e in assessments.evidence_of(session, a)}
    checklist = [
        (
            not unanswered,
            Item(
                "explain.check.answered",
                {"count": len(unanswered), "controls": _ids(unanswered[:5])},
            )
            if unanswered
            else Item("explain.check.all_answered", {"total": len(cat.controls)}),
        ),
        (
            not s.mandatory_unmet,
            Item(
                "explain.check.mandatory",
                {"count": len(s.mandatory_unmet), "controls": _ids(s.mandatory_unmet)},
            )
            if s.mandatory_unmet
            else Item("explain.check.mandatory_met"),
        ),
        (
            not s.unevidenced,
            Item(
                "explain.check.evidence",
                {"count": len(s.unevidenced), "controls": _ids(s.unevidenced)},
            )
            if s.unevidenced
            else Item("explain.check.evidence_ok"),
        ),
        (
            s.overall is not None and s.overall >= policy.min_score,
            Item(
                "explain.check.score",
                {
                    "score": _pct(s.overall or 0.0),
                    "minimum": _pct(policy.min_score),
                    "conditional": _pct(policy.conditional_min_score),
                },
            ),
        ),
        (
            not incidents,
            Item(
                "explain.check.incidents",
                {"count": len(incidents), "days": policy.incident_block_days},
            ),
        ),
    ]
    comments = {cid: r.review_comment for cid, r in rows.items()}
    pending = sorted(
        cid for cid, r in rows.items() if r.review is None and r.answer != "not_applicable"
    )
    return Explained(
        s,
        counted,
        blockers,
        checklist,
        outcome,
        _fixes(cat, answers, counted, comments),
        expiring,
        pending,
        incidents,
    )
