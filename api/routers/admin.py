"""Tokens, entities, indicators and the audit chain: the administrative resources."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, UploadFile

from api.deps import Admin, Analyst, Auditor, Reader, ServicesDep, SessionDep, Staff
from api.inputs import file_name
from api.schemas.admin import (
    AuditVerdict,
    EntityCreated,
    EntityIn,
    EntityOut,
    IndicatorImport,
    RetroHunt,
    SourceOut,
    TokenIn,
    TokenOut,
)
from certification.registry import EntityError, Registry
from core import audit
from core.tokens import Role, TokenError
from correlator import sources
from rules.sources import IndicatorFileError, load_indicator_file

router = APIRouter(prefix="/api/v1", tags=["admin"])
MAX_UPLOAD = 64 * 1024 * 1024


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


@router.get("/entities", response_model=list[EntityOut])
def list_entities(session: SessionDep, principal: Reader) -> list[EntityOut]:
    entities = Registry.all(session)
    if principal.role is Role.ENTITY:
        entities = [e for e in entities if e.id == principal.entity_id]
    return [
        EntityOut(
            id=e.id, name=e.name, level=e.level, networks=list(e.networks), domains=list(e.domains)
        )
        for e in entities
    ]


@router.post("/entities", status_code=201, response_model=EntityCreated)
def create_entity(body: EntityIn, session: SessionDep, principal: Admin) -> EntityCreated:
    try:
        e = Registry.add(
            session, body.id, body.name, body.level, body.networks, body.domains, principal.actor
        )
    except EntityError as exc:
        raise HTTPException(422, str(exc)) from None
    return EntityCreated(id=e.id, name=e.name)


@router.post("/indicators", status_code=201, response_model=IndicatorImport)
def import_indicators(
    file: UploadFile, session: SessionDep, services: ServicesDep, principal: Analyst
) -> IndicatorImport:
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
    return IndicatorImport(
        source=name,
        format=result.format,
        loaded=intake.loaded,
        new=intake.new,
        skipped=dict(result.skipped),
        rejected=rejected,
        retro_hunt=RetroHunt(observations=intake.hunt.observations, alerts=intake.hunt.alerts),
    )


@router.get("/sources", response_model=list[SourceOut])
def list_sources(session: SessionDep, principal: Staff) -> list[SourceOut]:
    """Each indicator source's last run: when, ok or error (and why), what it gave."""
    return [
        SourceOut(
            name=r.name,
            kind=r.kind,
            status=r.status,
            message=r.message or None,
            last_run=r.last_run.isoformat(),
            last_ok=r.last_ok.isoformat() if r.last_ok else None,
            counters=r.counters,
        )
        for r in sources.all_sources(session)
    ]


@router.get("/audit/verify", response_model=AuditVerdict)
def verify_audit(
    session: SessionDep,
    principal: Auditor,
    anchor: Annotated[
        str | None,
        Query(description="SEQ:DIGEST from `vigia audit anchor`: the chain must still hold it"),
    ] = None,
) -> AuditVerdict:
    try:
        against = audit.Anchor.parse(anchor) if anchor is not None else None
    except ValueError as exc:
        raise HTTPException(422, f"anchor: {exc}") from None
    verdict = audit.verify(session, against=against)
    return AuditVerdict(ok=verdict.ok, records=verdict.records, problem=verdict.problem or None)
