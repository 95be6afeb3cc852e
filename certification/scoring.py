"""Scoring an assessment: per domain and overall, from the answers and the evidence.

- implemented counts 1, partial 0.5, not implemented 0; not applicable leaves the
  control out (it needs a justification);
- an "implemented" answer with no current evidence counts as partial: a claim
  whose proof expired is not yet a fact;
- a mandatory control weighs twice a recommended one;
- a control the CERT rejected counts 0 until the entity answers it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from certification.catalogue import Catalogue

ANSWERS = ("implemented", "partial", "not_implemented", "not_applicable")
_VALUE = {"implemented": 1.0, "partial": 0.5, "not_implemented": 0.0}


@dataclass(frozen=True)
class Answer:
    answer: str
    review: str | None = None  # accepted | rejected | None (not reviewed)
    evidence_until: tuple[date, ...] = ()  # expiry of each evidence file


@dataclass
class DomainScore:
    domain: str
    name: str
    answered: int = 0
    total: int = 0
    score: float | None = None  # None when every control is not applicable


@dataclass
class Score:
    overall: float | None
    answered: int
    total: int
    domains: list[DomainScore] = field(default_factory=list)
    mandatory_unmet: list[str] = field(default_factory=list)  # not (implemented, evidenced)
    unevidenced: list[str] = field(default_factory=list)  # implemented, no current evidence

    @property
    def progress(self) -> float:
        return self.answered / self.total if self.total else 0.0


def value(a: Answer, today: date) -> float | None:
    if a.answer == "not_applicable":
        return None
    if a.review == "rejected":
        return 0.0
    v = _VALUE[a.answer]
    if a.answer == "implemented" and not any(d >= today for d in a.evidence_until):
        v = _VALUE["partial"]
    return v


def score(cat: Catalogue, answers: dict[str, Answer], today: date) -> Score:
    out = Score(None, 0, len(cat.controls))
    got = weight = 0.0
    by_domain = {d: DomainScore(d, name) for d, name in cat.domains}
    sums: dict[str, list[float]] = {d: [0.0, 0.0] for d, _ in cat.domains}
    for c in cat.controls:
        ds = by_domain[c.domain]
        ds.total += 1
        a = answers.get(c.id)
        w = 2.0 if c.mandatory else 1.0
        if a is None:
            v: float | None = 0.0
        else:
            out.answered += 1
            ds.answered += 1
            v = value(a, today)
            if a.answer == "implemented" and not any(d >= today for d in a.evidence_until):
                out.unevidenced.append(c.id)
        if v is None:
            continue
        if c.mandatory and v < 1.0:
            out.mandatory_unmet.append(c.id)
        sums[c.domain][0] += v * w
        sums[c.domain][1] += w
        got, weight = got + v * w, weight + w
    for d, (g, w) in sums.items():
        by_domain[d].score = round(g / w, 4) if w else None
    out.domains = list(by_domain.values())
    out.overall = round(got / weight, 4) if weight else None
    return out
