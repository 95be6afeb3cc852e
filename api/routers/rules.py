"""`/api/v1/rules`: the running YARA pack (and its hot swap); `/api/v1/files`: a file
sent by a sensor or an analyst, matched by its hashes and scanned with YARA."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, File, Form, Header, HTTPException, Response, UploadFile
from fastapi import Path as FastPath
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from api.deps import Admin, ServicesDep, Staff, require
from api.inputs import Name, file_name
from correlator.filestore import FileStore
from correlator.store import AlertStore
from rules.yarapack import YaraPackError
from sensors.observation import Observation, ObservationError
from vigia.core.clock import iso
from vigia.core.tokens import Principal, Role

router = APIRouter(tags=["rules"])
Submitter = Annotated[Principal, Depends(require(Role.SENSOR, Role.ADMIN, Role.ANALYST))]


def _state(services: ServicesDep) -> dict[str, Any]:
    st = services.rules.state
    pack = st.pack
    return {
        "pack": f"{pack.name}@{pack.version}" if pack else None,
        "rules": sorted(r.identifier for r in pack.rules) if pack else [],
        "files": [str(f) for f in pack.files] if pack else [],
        "loaded_at": iso(st.loaded_at) if st.loaded_at else None,
        "error": st.error or None,
        "swaps": st.swaps,
        "scans": st.scans,
        "scan_errors": st.scan_errors,
    }


@router.get("/api/v1/rules")
def rules_state(services: ServicesDep, principal: Staff) -> dict[str, Any]:
    services.rules.ensure_loaded()
    return _state(services)


PackReader = Annotated[
    Principal, Depends(require(Role.SENSOR, Role.ADMIN, Role.ANALYST, Role.AUDITOR))
]


@router.get("/api/v1/rules/pack", response_model=None)
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


@router.post("/api/v1/rules/reload")
def reload_rules(services: ServicesDep, principal: Admin) -> dict[str, Any]:
    """Compile the rules folders now; a pack that does not compile is refused (422,
    file:line) and the running one stays active."""
    try:
        services.rules.reload(force=True)
    except YaraPackError as exc:
        raise HTTPException(422, f"{exc} (the running pack stays active)") from None
    return _state(services)


@router.post("/api/v1/files")
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
) -> dict[str, Any]:
    """A file seen on the wire (or a sample): its hashes against the indicators, its
    bytes against the running YARA pack; alerts as for observations.

    A plain function, so it runs in a worker thread; the hashing and the YARA scan
    run outside any transaction (a read gives the indicators, a short write stores
    the alerts), so SQLite's write lock is never held across them."""
    if principal.role is Role.SENSOR and observer not in ("", principal.name):
        raise HTTPException(403, "a sensor sends files only as itself")
    data = file.file.read(services.settings.max_file_bytes + 1)
    if len(data) > services.settings.max_file_bytes:
        raise HTTPException(413, f"files are limited to {services.settings.max_file_bytes} bytes")
    if not data:
        raise HTTPException(422, "file: empty")
    when = timestamp or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    doc = {
        "@timestamp": iso(when),
        "observer": {"name": observer or principal.name},
        "source": {"ip": src_ip, **({"port": src_port} if src_port is not None else {})},
        "destination": {"ip": dst_ip, **({"port": dst_port} if dst_port is not None else {})},
        "network": {"transport": transport, "community_id": community_id or "1:upload"},
    }
    try:
        obs = Observation.from_ecs(doc)
    except ObservationError as exc:
        raise HTTPException(422, str(exc)) from None
    if protocol:
        obs.protocol = protocol
    if file.filename:
        obs.add("file.name", file_name(file.filename, "upload"))
    kept = None
    if keep:
        sha256, kept = _files(services).keep(data)
        services.telemetry.count("files_kept" if kept else "files_kept_again")
    alerts: list[dict[str, Any]] = []
    rules: list[str] = []
    if scan:
        services.rules.ensure_loaded()
        with services.db.transaction(write=False) as session:
            index = services.live.current(session)
            entity_of = services.constituency.lookup(session)
        alerts, rules = services.rules.scan_file(
            obs, data, source, index, services.settings.dedup_window_s, entity_of
        )
        if alerts:
            with services.db.transaction() as session:
                _store(session, alerts, services)
        services.telemetry.count("files_scanned")
        sha256 = obs.values["file.hash.sha256"][0]
    else:
        sha256 = hashlib.sha256(data).hexdigest()
    return {
        "sha256": sha256,
        "size": len(data),
        "yara": rules,
        "alerts": [a["event"]["id"] for a in alerts],
        "kept": kept,
    }


def _files(services: ServicesDep) -> FileStore:
    return FileStore(services.settings.data_dir / "files")


@router.get("/api/v1/files/{sha256}", response_class=FileResponse)
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


def _store(session: Session, alerts: list[dict[str, Any]], services: Any) -> None:
    for a in alerts:
        AlertStore.upsert(session, a)
    if alerts and services.ingest.after_alerts is not None:
        services.ingest.after_alerts(session, [a["event"]["id"] for a in alerts])
