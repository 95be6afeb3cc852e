"""TAXII 2.1 resources (OASIS TAXII 2.1, section 4), as this server fills them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class TaxiiError(BaseModel):
    title: str
    http_status: str


class Discovery(BaseModel):
    title: str
    description: str
    default: str
    api_roots: list[str]


class ApiRoot(BaseModel):
    title: str
    description: str
    versions: list[str]
    max_content_length: int


class CollectionOut(BaseModel):
    id: str
    title: str
    description: str
    alias: str | None = None
    can_read: bool
    can_write: bool
    media_types: list[str]


class Collections(BaseModel):
    collections: list[CollectionOut] | None = None


class Envelope(BaseModel):
    more: bool
    next: str | None = None
    objects: list[dict[str, Any]] | None = None


class ManifestRecord(BaseModel):
    id: str
    date_added: str
    version: str
    media_type: str


class Manifest(BaseModel):
    more: bool
    next: str | None = None
    objects: list[ManifestRecord] | None = None
