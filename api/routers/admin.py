"""Tokens, entities, indicators and the audit chain: the administrative resources."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, UploadFile
from pydantic import BaseModel, Field

from api.deps import Admin, Analyst, Auditor, Reader, ServicesDep, SessionDep, Staff
from api.inputs import Input, Name, file_name
from certification.registry import EntityError, Registry
from correlator import sources
from rules.sources import IndicatorFileError, load_indicator_file
from vigia.core import audit
from vigia.core.tokens import Role, TokenError

router = APIRouter(prefix="/api/v1", tags=["admin"])
MAX_UPLOAD = 64 * 1024 * 1024


class TokenIn(Input):
    role: Role
    name: Name = Field(min_length=1, max_length=200)
    entity_id: str | None = Field(default=None, max_length=64)


class TokenOut(BaseModel):
    id: str
    token: str = Field(description="shown once; only its hash is kept")
    role: Role
    entity_id: str | None


@router.post("/tokens", response_model=TokenOut, status_code=201)
def create_token(
    body: TokenIn, services: ServicesDep, session: SessionDep, principal: Admin
) -> TokenOut:
    if body.entity_id and Registry.get(session, body.entity_id) is None:
        raise HTTPException(422, f"no entity {body.entity_id!r}")
    try:
        token, row = services.tokens.create(
            session, body.role, body.name, body.entity_id, principal.actor
        )
    except TokenError as exc:
        raise HTTPException(422, str(exc)) from None
    return TokenOut(id=row.id, token=token, role=body.role, entity_id=body.entity_id)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: str, services: ServicesDep, session: SessionDep, principal: Admin
) -> None:
    if not services.tokens.revoke(session, token_id, principal.actor):
        raise HTTPException(404, "no such active token")


class EntityIn(Input):
    id: str = Field(min_length=2, max_length=63)
    name: Name = Field(min_length=1, max_length=300)
    level: str
    networks: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)


@router.get("/entities")
def list_entities(session: SessionDep, principal: Reader) -> list[dict[str, Any]]:
    entities = Registry.all(session)
    if principal.role is Role.ENTITY:
        entities = [e for e in entities if e.id == principal.entity_id]
    return [
        e.__dict__ | {"networks": list(e.networks), "domains": list(e.domains)} for e in entities
    ]


@router.post("/entities", status_code=201)
def create_entity(body: EntityIn, session: SessionDep, principal: Admin) -> dict[str, Any]:
    try:
        e = Registry.add(
            session, body.id, body.name, body.level, body.networks, body.domains, principal.actor
        )
    except EntityError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"id": e.id, "name": e.name}


@router.post("/indicators", status_code=201)
def import_indicators(
    file: UploadFile, session: SessionDep, services: ServicesDep, principal: Analyst
) -> dict[str, Any]:
    """Upload one indicator file (MISP event, STIX bundle, Zeek intel, CSV).

    New indicators are hunted over the stored observations of the last
    `VIGIA_RETRO_HUNT_DAYS` days. (A plain function: it runs in a worker thread, and
    the file is parsed before the first statement opens the write transaction.)
    """
    data = file.file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise HTTPException(413, f"indicator files are limited to {MAX_UPLOAD} bytes")
    name = file_name(file.filename, "upload")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            result = load_indicator_file(path, strict=False)
        except IndicatorFileError as exc:
            raise HTTPException(422, str(exc).replace(str(tmp) + "/", "")) from None
        rejected = [r.replace(str(tmp) + "/", "") for r in result.rejected]
    if rejected and not result.indicators:  # nothing usable: refuse, naming the first fault
        raise HTTPException(422, rejected[0])
    intake = services.take_in(session, result, principal.actor, name)
    return {
        "source": name,
        "format": result.format,
        "loaded": intake.loaded,
        "new": intake.new,
        "skipped": dict(result.skipped),
        "rejected": rejected,
        "retro_hunt": {"observations": intake.hunt.observations, "alerts": intake.hunt.alerts},
    }


@router.get("/sources")
def list_sources(session: SessionDep, principal: Staff) -> list[dict[str, Any]]:
    """Each indicator source's last run: when, ok or error (and why), what it gave."""
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "status": r.status,
            "message": r.message or None,
            "last_run": r.last_run.isoformat(),
            "last_ok": r.last_ok.isoformat() if r.last_ok else None,
            "counters": r.counters,
        }
        for r in sources.all_sources(session)
    ]


@router.get("/audit/verify")
def verify_audit(session: SessionDep, principal: Auditor) -> dict[str, Any]:
    verdict = audit.verify(session)
    return {"ok": verdict.ok, "records": verdict.records, "problem": verdict.problem or None}
