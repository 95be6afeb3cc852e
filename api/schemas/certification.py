"""Certification: control catalogues, self-assessments and their review,
certificates, and the progress towards the national target."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.inputs import Input, Text
from api.schemas.common import Open


class AnswerIn(Input):
    answer: Literal["implemented", "partial", "not_implemented", "not_applicable"]
    justification: Text = Field(default="", max_length=5000)


class ReviewIn(Input):
    verdict: Literal["accepted", "rejected"]
    comment: Text = Field(default="", max_length=5000)


class CommentIn(Input):
    comment: Text = Field(default="", max_length=5000)


class DecisionIn(Input):
    deny: Text = Field(default="", max_length=5000, description="refuse, with this reason")


class OpenIn(Input):
    entity_id: str | None = Field(default=None, max_length=64, description="admins only")


class ChangeIn(Input):
    reason: Text = Field(default="", max_length=5000)


class CatalogueVersion(BaseModel):
    version: str
    title: str
    current: bool
    sha256: str


class Domain(BaseModel):
    id: str
    name: str


class Control(BaseModel):
    id: str
    domain: str
    title: str
    objective: str
    applicability: str
    guidance: str
    iso27001: list[str]
    cis_v8: list[str]
    mandatory: bool


class CatalogueOut(BaseModel):
    version: str
    title: str
    domains: list[Domain]
    controls: list[Control]


class CatalogueLoaded(BaseModel):
    version: str
    controls: int


class EvidenceOut(BaseModel):
    id: int
    filename: str
    media_type: str
    size: int
    sha256: str
    expires_on: str
    expired: bool


class ControlState(Control):
    answer: str | None
    justification: str
    review: str | None
    review_comment: str
    evidence: list[EvidenceOut]


class DomainScore(BaseModel):
    domain: str
    name: str
    answered: int
    total: int
    score: float | None


class AssessmentOut(BaseModel):
    id: int
    entity_id: str
    catalogue: str
    status: str
    decision: str | None
    decision_reasons: Any
    score: float | None
    progress: float
    mandatory_unmet: list[str]
    unevidenced: list[str]
    domains: list[DomainScore]
    controls: list[ControlState]
    decision_level: str | None = Field(
        default=None, description="the level the decision gave (decisions only)"
    )


class AssessmentSummary(BaseModel):
    id: int
    entity_id: str
    catalogue: str
    status: str
    decision: str | None
    score: float | None
    progress: float
    submitted_at: str | None


class EvidenceAdded(BaseModel):
    id: int
    sha256: str
    size: int
    control_id: str


class CertificateOut(BaseModel):
    id: str
    entity_id: str
    assessment_id: int | None
    level: str
    status: str
    score: float | None
    issued_at: str
    valid_until: str
    observation: str | None
    reason: str | None


class AssessmentBrief(BaseModel):
    id: int
    status: str
    score: float | None
    progress: float


class EntityCertification(BaseModel):
    entity_id: str
    state: str
    certificate: CertificateOut | None
    assessment: AssessmentBrief | None


class Progress(Open):
    """Certified / active registered entities against the target, with breakdowns (by
    government level, by department: the departmental entity above, "" for national
    bodies, and by state), the monthly trend, a forecast (with `by`: the monthly pace
    that reaches the target that day), a month-by-month projection, the entities
    closest to certification and those whose certificate ends within
    `expiring_days`."""

    target: float
    certified: int
    total: int
    ratio: float
    needed: int
    by_level: dict[str, Any]
    by_department: dict[str, Any]
    by_state: dict[str, Any]
    trend: list[dict[str, Any]]
    forecast: dict[str, Any]
    projection: list[dict[str, Any]]
    closest: list[dict[str, Any]]
    expiring_days: int
    expiring: list[dict[str, Any]]


class Snapshot(BaseModel):
    day: str
    target: float
    certified: int
    total: int
    ratio: float
    by_level: dict[str, Any]


class ProgressHistory(BaseModel):
    snapshots: list[Snapshot]


class PublicCertificate(BaseModel):
    id: str
    entity: str
    level: str
    status: str
    in_force: bool
    issued_at: str
    valid_until: str
    under_observation: bool
    issuer: str
