"""`/api/v1/rules`: the running YARA pack (and its hot swap); `/api/v1/files`: a file
sent by a sensor or an analyst, matched by its hashes and scanned with YARA."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, File, Form, Header, HTTPException, Response, UploadFile
from fastapi import Path as FastPath
from fastapi.responses import FileResponse

from api.deps import Admin, ServicesDep, Staff, require
from api.inputs import Name, file_name
from api.schemas.common import binary
from api.schemas.rules import FileScanOut, Pack, RulesState
from core.clock import iso
from core.tokens import Principal, Role
from correlator.files import FileRefused, FileScanner, Seen
from correlator.filestore import FileStore
from rules.yarapack import YaraPackError

router = APIRouter(tags=["rules"])
Submitter = Annotated[Principal, Depends(require(Role.SENSOR, Role.ADMIN, Role.ANALYST))]


def _state(services: ServicesDep) -> RulesState:
    st = services.rules.state
    pack = st.pack
    return RulesState(
        pack=f"{pack.name}@{pack.version}" if pack else None,
        rules=sorted(r.identifier for r in pack.rules) if pack else [],
        files=[str(f) for f in pack.files] if pack else [],
        loaded_at=iso(st.loaded_at) if st.loaded_at else None,
        error=st.error or None,
        swaps=st.swaps,
        scans=st.scans,
        scan_errors=st.scan_errors,
    )


@router.get("/api/v1/rules", response_model=RulesState)
def rules_state(services: ServicesDep, principal: Staff) -> RulesState:
    services.rules.ensure_loaded()
    return _state(services)


PackReader = Annotated[
    Principal, Depends(require(Role.SENSOR, Role.ADMIN, Role.ANALYST, Role.AUDITOR))
]


@router.get(
    "/api/v1/rules/pack",
    response_model=Pack,
    responses={304: {"description": "unchanged: the ETag sent is the running pack's"}},
)
def rules_pack(
    services: ServicesDep,
    principal: PackReader,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The running pack's rule sources, for sensors to compile and scan where the bytes
    are. `ETag` is the sources' SHA-256: a sensor holding it gets 304."""
    services.rules.ensure_loaded()
    pack = services.rules.state.pack
    if pack is None:
        raise HTTPException(404, "no YARA pack is running")
    body = pack.shipped()
    etag = f'"{body["sha256"]}"'
    if if_none_match == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(orjson.dumps(body), media_type="application/json", headers={"ETag": etag})


@router.post("/api/v1/rules/reload", response_model=RulesState)
def reload_rules(services: ServicesDep, principal: Admin) -> RulesState:
    """Compile the rules folders now; a pack that does not compile is refused (422,
    file:line) and the running one stays active."""
    try:
        services.rules.reload(force=True)
    except YaraPackError as exc:
        raise HTTPException(422, f"{exc} (the running pack stays active)") from None
    return _state(services)


@router.post("/api/v1/files", response_model=FileScanOut)
def scan_file(
    services: ServicesDep,
    principal: Submitter,
    file: Annotated[UploadFile, File()],
    observer: Annotated[Name, Form(max_length=200)] = "",
    timestamp: Annotated[datetime | None, Form()] = None,
    src_ip: Annotated[str, Form(max_length=45)] = "0.0.0.0",
    dst_ip: Annotated[str, Form(max_length=45)] = "0.0.0.0",
    src_port: Annotated[int | None, Form(ge=0, le=65535)] = None,
    dst_port: Annotated[int | None, Form(ge=0, le=65535)] = None,
    transport: Annotated[str, Form(max_length=10)] = "tcp",
    community_id: Annotated[str, Form(max_length=100)] = "",
    protocol: Annotated[str, Form(max_length=20)] = "",
    source: Annotated[str, Form(max_length=50)] = "upload",
    keep: Annotated[bool, Form(description="keep the bytes for analysts (by SHA-256)")] = False,
    scan: Annotated[
        bool, Form(description="false: only keep it (a sensor that matched and scanned it)")
    ] = True,
) -> FileScanOut:
    """A file seen on the wire (or a sample): its hashes against the indicators, its
    bytes against the running YARA pack; alerts as for observations (correlator.files).
    A plain function, so it runs in a worker thread."""
    if principal.role is Role.SENSOR and observer not in ("", principal.name):
        raise HTTPException(403, "a sensor sends files only as itself")
    limit = services.settings.max_file_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"files are limited to {limit} bytes")
    seen = Seen(
        observer or principal.name,
        timestamp,
        src_ip,
        dst_ip,
        src_port,
        dst_port,
        transport,
        community_id,
        protocol,
        file_name(file.filename, "upload") if file.filename else "",
        source,
    )
    try:
        done = _scanner(services).take(seen, data, keep=keep, scan=scan)
    except FileRefused as exc:
        raise HTTPException(422, str(exc)) from None
    return FileScanOut(
        sha256=done.sha256, size=done.size, yara=done.yara, alerts=done.alerts, kept=done.kept
    )


def _files(services: ServicesDep) -> FileStore:
    return FileStore(services.settings.data_dir / "files")


def _scanner(services: ServicesDep) -> FileScanner:
    return FileScanner(services.ingest, services.rules, _files(services), services.telemetry)


@router.get("/api/v1/files/{sha256}", response_class=FileResponse, responses=binary())
def get_file(
    sha256: Annotated[str, FastPath(pattern=r"^[0-9a-fA-F]{64}$")],
    services: ServicesDep,
    principal: Annotated[Principal, Depends(require(Role.ADMIN, Role.ANALYST))],
) -> FileResponse:
    """A kept file's bytes, as an attachment never rendered (it may be malware)."""
    path = _files(services).find(sha256)
    if path is None:
        raise HTTPException(404, f"no file {sha256.lower()} is kept")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"{sha256.lower()}.bin",
        headers={"X-Content-Type-Options": "nosniff"},
    )
