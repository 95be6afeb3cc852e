"""Tokens, entities, indicator files, sources and the audit chain."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.inputs import Input, Name
from core.tokens import Role


class TokenIn(Input):
    role: Role
    name: Name = Field(min_length=1, max_length=200)
    entity_id: str | None = Field(default=None, max_length=64)


class TokenOut(BaseModel):
    id: str
    token: str = Field(description="shown once; only its hash is kept")
    role: Role
    entity_id: str | None


class EntityIn(Input):
    id: str = Field(min_length=2, max_length=63)
    name: Name = Field(min_length=1, max_length=300)
    level: str
    networks: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)


class EntityOut(BaseModel):
    id: str
    name: str
    level: str
    networks: list[str]
    domains: list[str]


class EntityCreated(BaseModel):
    id: str
    name: str


class RetroHunt(BaseModel):
    observations: int
    alerts: int


class IndicatorImport(BaseModel):
    source: str
    format: str
    loaded: int
    new: int
    skipped: dict[str, int]
    rejected: list[str]
    retro_hunt: RetroHunt


class SourceOut(BaseModel):
    name: str
    kind: str
    status: str
    message: str | None
    last_run: str
    last_ok: str | None
    counters: dict[str, Any]


class AuditVerdict(BaseModel):
    ok: bool
    records: int
    problem: str | None
