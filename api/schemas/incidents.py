"""Incidents: the queue, the detail an analyst or an entity may read, the edits,
the work on them (notes, observables, tasks, notices, replies) and sharing."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from api.inputs import MAX_ID, Input, Name, Text
from api.schemas.common import Open

State = Literal["new", "triaged", "in_progress", "contained", "resolved", "closed"]
Tlp = Literal["clear", "green", "amber", "amber+strict", "red"]
Pap = Literal["clear", "green", "amber", "red"]
Resolution = Literal[
    "true_positive_with_impact", "true_positive_without_impact", "false_positive", "duplicate"
]
AlertIds = Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=500)]


class _Classified(Input):
    """What an analyst sets on an incident besides its title (each optional)."""

    rsit_class: str | None = Field(default=None, max_length=60)
    rsit_type: str | None = Field(default=None, max_length=60)
    tlp: Tlp | None = None
    pap: Pap | None = None
    ncciss: int | None = Field(default=None, ge=0, le=5)


class IncidentCreate(_Classified):
    alert_ids: AlertIds = Field(default_factory=list)
    title: Name = Field(default="", max_length=300)
    summary: Text = Field(default="", max_length=20000)


class IncidentUpdate(_Classified):
    version: int
    title: Name | None = Field(default=None, max_length=300)
    summary: Text | None = Field(default=None, max_length=20000)


class TransitionIn(Input):
    version: int
    to: State
    resolution: Resolution | None = None
    comment: Text = Field(default="", max_length=5000)


class MergeIn(Input):
    version: int
    incident_ids: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(min_length=1, max_length=50)
    ]


class SplitIn(Input):
    version: int
    alert_ids: AlertIds
    title: Name = Field(default="", max_length=300)


class LinkIn(Input):
    version: int
    alert_ids: AlertIds


class Rsit(BaseModel):
    class_: str | None = Field(alias="class")
    type: str | None


class IncidentEntity(BaseModel):
    id: str
    notified_at: str | None
    reply_due: str | None
    acknowledged_at: str | None
    replied_at: str | None


class Due(BaseModel):
    acknowledge: str | None
    contain: str | None
    resolve: str | None


class IncidentSummary(BaseModel):
    id: int
    version: int
    title: str
    status: str
    status_es: str
    resolution: str | None
    priority: str
    ncciss: int
    rsit: Rsit
    tlp: str
    pap: str
    entities: list[IncidentEntity]
    created_at: str
    updated_at: str
    occurred_at: str | None
    acknowledged_at: str | None
    contained_at: str | None
    resolved_at: str | None
    closed_at: str | None
    due: Due
    merged_into: int | None
    sla_breaches: list[str]
    owner: str | None = Field(default=None, description='the analyst working it ("analyst:ana")')


class IncidentAlert(BaseModel):
    id: str
    timestamp: str
    count: int
    severity: int
    entity: str | None
    matched: dict[str, Any]
    indicator: dict[str, Any]
    source: dict[str, Any]
    destination: dict[str, Any]
    tlp: str


class Observable(BaseModel):
    type: str
    value: str
    tlp: str


class TaskOut(BaseModel):
    id: int
    version: int
    title: str
    status: str


class Task(TaskOut):
    assignee: str
    created_at: str
    done_at: str | None


class TimelineEntry(BaseModel):
    at: str
    kind: str
    body: str
    actor: str | None = None
    entity: str | None = None
    tlp: str | None = None
    data: Any = None


class IncidentDetail(IncidentSummary):
    summary: str
    redacted: bool = Field(description="true: TLP keeps the incident's content from this caller")
    alerts: list[IncidentAlert]
    observables: list[Observable]
    tasks: list[Task]
    timeline: list[TimelineEntry]
    transitions: list[str] = Field(description="the states it may move to now")


class IncidentPage(BaseModel):
    incidents: list[IncidentSummary]
    next_cursor: str | None


class NoteIn(Input):
    body: Text = Field(min_length=1, max_length=20000)
    tlp: Tlp = "amber"


class ObservableIn(Input):
    type: str = Field(max_length=64, description="a MISP attribute type: ip-dst, domain, sha256…")
    value: Name = Field(min_length=1, max_length=2000)
    tlp: Tlp = "amber"


class TaskIn(Input):
    title: Name = Field(min_length=1, max_length=300)
    assignee: Name = Field(default="", max_length=200)


class TaskUpdate(Input):
    version: int
    done: bool


class NotifyIn(Input):
    entity_ids: list[str] | None = Field(default=None, max_length=100)


class Queued(BaseModel):
    queued: int = Field(description="notices queued (sent by the scheduler)")


class Acknowledged(BaseModel):
    acknowledged: bool
    first: bool = Field(description="false: it had been acknowledged before")


class ReplyIn(Input):
    body: Text = Field(min_length=1, max_length=20000)


class ShareOut(BaseModel):
    id: int
    incident_id: int
    event_uuid: str
    distribution: int
    attributes: int
    status: Literal["pending", "sent", "failed"]
    attempts: int
    last_error: str


class Metrics(Open):
    """Times to detect / acknowledge / contain / resolve and SLA breaches, overall
    and grouped by entity, priority and RSIT class."""

    overall: dict[str, Any]
    by_entity: dict[str, Any]
    by_priority: dict[str, Any]
    by_rsit_class: dict[str, Any]


class MispEvent(Open):
    """A MISP event (MISP core format)."""

    Event: dict[str, Any]


class StixBundle(Open):
    """A STIX 2.1 bundle."""

    type: Literal["bundle"]
    id: str
    objects: list[dict[str, Any]]
