"""The control catalogue: versioned YAML, validated where it enters, kept in the
database by version so that an assessment always reads the version it began on."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from certification.errors import CertError
from certification.models import CatalogueRow
from core import audit
from core.clock import utcnow

BUNDLED = "vigia-2026.1.yaml"
_ISO = re.compile(r"^A\.[5-8]\.\d{1,2}$")  # ISO/IEC 27001:2022 Annex A: A.5.1 … A.8.34
_CIS = re.compile(r"^\d{1,2}\.\d{1,2}$")  # CIS Controls v8 safeguard: 1.1 … 18.5
_ID = re.compile(r"^[A-Z]{2,6}(-\d{2})?$")


class CatalogueError(CertError):
    """A control catalogue refused: 422."""


@dataclass(frozen=True)
class Control:
    id: str
    domain: str
    title: str
    objective: str
    applicability: str
    guidance: str
    mandatory: bool
    iso27001: tuple[str, ...]
    cis_v8: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    version: str
    title: str
    domains: tuple[tuple[str, str], ...]  # (id, name), in order
    controls: tuple[Control, ...]

    def control(self, control_id: str) -> Control | None:
        return next((c for c in self.controls if c.id == control_id), None)


def parse(doc: Any) -> Catalogue:
    """A catalogue from its YAML document; CatalogueError naming the first fault."""
    if not isinstance(doc, dict):
        raise CatalogueError("catalogue.not_mapping")
    version, title = str(doc.get("version", "")).strip(), str(doc.get("title", "")).strip()
    if not re.match(r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,39}$", version):
        raise CatalogueError("catalogue.version_invalid")
    if not title:
        raise CatalogueError("catalogue.title_missing")
    domains, controls, seen = [], [], set()
    for d in doc.get("domains") or []:
        did = str(d.get("id", "")) if isinstance(d, dict) else ""
        if not _ID.match(did) or not d.get("name"):
            raise CatalogueError("catalogue.domain_invalid", domain=did or "?")
        domains.append((did, str(d["name"])))
        for c in d.get("controls") or []:
            cid = str(c.get("id", "")) if isinstance(c, dict) else ""
            where = f"control {cid or '?'} in {did}"
            if not _ID.match(cid) or cid in seen:
                raise CatalogueError("catalogue.control_id", where=where, domain=did)
            seen.add(cid)
            for key in ("title", "objective", "applicability", "guidance"):
                if not str(c.get(key, "")).strip():
                    raise CatalogueError("catalogue.field_missing", where=where, key=key)
            if not isinstance(c.get("mandatory"), bool):
                raise CatalogueError("catalogue.mandatory_invalid", where=where)
            iso, cis = list(c.get("iso27001") or []), [str(x) for x in c.get("cis_v8") or []]
            bad = [x for x in iso if not _ISO.match(str(x))] + [x for x in cis if not _CIS.match(x)]
            if bad:
                raise CatalogueError("catalogue.reference_invalid", where=where, reference=bad[0])
            controls.append(
                Control(
                    cid,
                    did,
                    str(c["title"]),
                    str(c["objective"]),
                    str(c["applicability"]),
                    str(c["guidance"]),
                    c["mandatory"],
                    tuple(str(x) for x in iso),
                    tuple(cis),
                )
            )
    if not controls:
        raise CatalogueError("catalogue.empty")
    return Catalogue(version, title, tuple(domains), tuple(controls))


def load_text(text: str) -> tuple[Catalogue, dict[str, Any]]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError("catalogue.not_yaml", reason=str(exc).splitlines()[0]) from None
    return parse(doc), doc


def store(
    session: Session, text: str, actor: str, make_current: bool = True, audited: bool = True
) -> Catalogue:
    """Keep a new catalogue version; a version already kept cannot change."""
    cat, doc = load_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    held = session.get(CatalogueRow, cat.version)
    if held is not None:
        if held.sha256 != digest:
            raise CatalogueError("catalogue.version_exists", version=cat.version)
        return cat
    if make_current:
        session.execute(update(CatalogueRow).values(current=False))
    session.add(
        CatalogueRow(
            version=cat.version,
            title=cat.title,
            doc=doc,
            sha256=digest,
            loaded_at=utcnow(),
            current=make_current,
        )
    )
    if not audited:
        return cat
    audit.append(
        session,
        actor,
        "catalogue.load",
        "catalogue",
        cat.version,
        {"sha256": digest, "controls": len(cat.controls), "current": make_current},
    )
    return cat


def ensure_bundled(session: Session) -> None:
    """The catalogue shipped with Vigía, on a database that has none."""
    if session.execute(select(CatalogueRow.version).limit(1)).first() is None:
        text = resources.files("certification.catalogues").joinpath(BUNDLED).read_text("utf-8")
        # Part of setting the schema up, like the migrations: shipped with the code,
        # not a change anyone made, so not in the audit log.
        store(session, text, "system:setup", audited=False)


def get(session: Session, version: str | None = None) -> Catalogue:
    q = select(CatalogueRow)
    q = q.where(CatalogueRow.version == version) if version else q.where(CatalogueRow.current)
    row = session.execute(q).scalar_one_or_none()
    if row is None:
        raise CatalogueError("catalogue.not_found", version=version or "(current)")
    return _parsed(row.version, row.sha256, row.doc)


_cache: dict[tuple[str, str], Catalogue] = {}


def _parsed(version: str, digest: str, doc: dict[str, Any]) -> Catalogue:
    key = (version, digest)
    if key not in _cache:  # versions never change once kept, so parse each once
        _cache[key] = parse(doc)
    return _cache[key]


def versions(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(select(CatalogueRow).order_by(CatalogueRow.loaded_at)).scalars()
    return [
        {"version": r.version, "title": r.title, "current": r.current, "sha256": r.sha256}
        for r in rows
    ]
