"""The certification policy (from the settings) and what the incidents side tells it.

Certification never imports the incidents package: the composition root gives it
an `OpenIncidents` function that lists an entity's open incidents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from certification.scoring import Score
from core.i18n import RECORD, text
from core.settings import Settings


@dataclass(frozen=True)
class OpenIncident:
    id: int
    priority: str  # P1..P4
    opened_at: datetime


class OpenIncidents(Protocol):
    """An entity's open incidents (the incidents side's, injected by the composition root)."""

    def __call__(self, session: Session, entity_id: str, /) -> list[OpenIncident]: ...


def no_incidents(session: Session, entity_id: str) -> list[OpenIncident]:
    return []


@dataclass(frozen=True)
class Decision:
    level: str | None  # certified | conditional | None (not issued)
    reasons: list[str]


@dataclass(frozen=True)
class CertPolicy:
    min_score: float = 0.8
    conditional_min_score: float = 0.6
    validity_days: int = 365
    conditional_validity_days: int = 180
    incident_block_days: int = 7
    reminder_days: tuple[int, ...] = (60, 30, 7)

    @classmethod
    def from_settings(cls, s: Settings) -> CertPolicy:
        return cls(
            s.cert_min_score,
            s.cert_conditional_min_score,
            s.cert_validity_days,
            s.cert_conditional_validity_days,
            s.cert_incident_block_days,
            tuple(sorted(s.cert_reminder_days, reverse=True)),
        )

    def blocking(self, incidents: list[OpenIncident], now: datetime) -> list[OpenIncident]:
        """Open P1/P2 incidents older than the grace period: they block issuance and put
        a certificate under observation."""
        limit = timedelta(days=self.incident_block_days)
        return [i for i in incidents if i.priority in ("P1", "P2") and now - i.opened_at > limit]

    def decide(self, score: Score, incidents: list[OpenIncident], now: datetime) -> Decision:
        # The reasons are recorded with the decision, worded by the catalogue.
        reasons = [
            text(
                RECORD,
                "decision.incident_open",
                {"incident_id": i.id, "priority": i.priority, "since": f"{i.opened_at:%Y-%m-%d}"},
            )
            for i in self.blocking(incidents, now)
        ]
        if score.overall is None:
            reasons.append(text(RECORD, "decision.nothing_applicable"))
        if reasons:
            return Decision(None, reasons)
        assert score.overall is not None
        if not score.mandatory_unmet and score.overall >= self.min_score:
            return Decision("certified", [])
        if score.mandatory_unmet:
            unmet = {"controls": ", ".join(score.mandatory_unmet)}
            reasons.append(text(RECORD, "decision.mandatory_unmet", unmet))
        if score.overall < self.min_score:
            low = {"score": f"{score.overall:.0%}", "minimum": f"{self.min_score:.0%}"}
            reasons.append(text(RECORD, "decision.score_low", low))
        if score.overall >= self.conditional_min_score:
            return Decision("conditional", reasons)
        return Decision(None, reasons)

    def validity(self, level: str) -> timedelta:
        days = self.validity_days if level == "certified" else self.conditional_validity_days
        return timedelta(days=days)
