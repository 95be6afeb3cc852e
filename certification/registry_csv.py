"""The entity registry as CSV, both ways: export for a spreadsheet, import that adds
new entities and updates known ones, row by row (a bad row is reported with its
line and skipped; the good ones are kept)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import registry
from certification.registry import EntityError, EntityRow, Registry
from core import csvsafe

COLUMNS = (
    "id",
    "name",
    "level",
    "parent",
    "networks",
    "domains",
    "contact_name",
    "contact_email",
    "contact_phone",
    "active",
)


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[str] = field(default_factory=list)


def export(session: Session) -> str:
    rows = []
    for r in session.execute(select(EntityRow).order_by(EntityRow.id)).scalars():
        first = (r.contacts or [{}])[0]
        rows.append(
            [
                r.id,
                r.name,
                r.level,
                r.parent_id or "",
                " ".join(r.networks),
                " ".join(r.domains),
                first.get("name", ""),
                first.get("email", ""),
                first.get("phone", ""),
                "true" if r.active else "false",
            ]
        )
    return csvsafe.rows(COLUMNS, rows)  # every cell escaped against formulas


def import_csv(session: Session, text: str, actor: str) -> ImportResult:
    out = ImportResult()
    reader = csv.DictReader(io.StringIO(text))
    missing = {"id", "name", "level"} - set(reader.fieldnames or ())
    if missing:
        raise EntityError("entity.csv_columns", columns=", ".join(sorted(missing)))
    rows = list(reader)
    # Parents first: a row may name a parent defined further down.
    for line, row in sorted(enumerate(rows, start=2), key=lambda x: bool(x[1].get("parent"))):
        try:
            with session.begin_nested():
                _one(session, row, actor, out)
        except EntityError as exc:
            out.rejected.append(f"line {line}: {exc}")
    return out


def _one(session: Session, row: dict[str, str], actor: str, out: ImportResult) -> None:
    eid = (row.get("id") or "").strip()
    name, level = (
        csvsafe.unescape((row.get("name") or "").strip()),
        (row.get("level") or "").strip(),
    )
    nets = (row.get("networks") or "").split()
    doms = (row.get("domains") or "").split()
    parent = (row.get("parent") or "").strip() or None
    active = (row.get("active") or "true").strip().lower() not in ("false", "0", "no")
    if session.get(EntityRow, eid) is None:
        Registry.add(session, eid, name, level, nets, doms, actor)
        registry.update(session, eid, name, level, nets, doms, parent, active, actor)
        out.added += 1
    elif registry.update(session, eid, name, level, nets, doms, parent, active, actor):
        out.updated += 1
    else:
        out.unchanged += 1
    email = csvsafe.unescape((row.get("contact_email") or "").strip())
    if email:
        contacts, url, secret = Registry.contacts_of(session, eid)
        first = {
            "name": csvsafe.unescape((row.get("contact_name") or "").strip()),
            "email": email,
            "phone": csvsafe.unescape((row.get("contact_phone") or "").strip()),
        }
        if not contacts or contacts[0] != first:
            Registry.set_contacts(session, eid, [first, *contacts[1:]], url, secret, actor)
