"""What the CERT and the entities read of the findings: an incident's hosts as CSV
(through the safe CSV writer), the advice for a report kind, the unattributed list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import csvsafe
from incidents.reports.formats import advice
from incidents.reports.models import ReportFindingRow

CSV_HEADER = ("fecha_utc", "ip", "nombre", "puerto", "valor", "informe", "severidad", "detalle")


def _line(r: Any) -> list[Any]:
    return [
        r.seen_at.strftime("%Y-%m-%d %H:%M:%S"),
        r.ip or "",
        r.name or "",
        "" if r.port is None else r.port,
        r.value,
        r.kind,
        r.severity,
        r.detail,
    ]


class HostList:
    """An incident's hosts, kept as the findings stream in and written as CSV once,
    for the notice: an incident opened by this import needs no read back of what was
    just written. Each host is kept as its CSV line, escaped and quoted as it comes
    (csvsafe.checked and csvsafe.quoted: as the csv module writes it), so the CSV is
    one join with no second pass over a million hosts."""

    def __init__(self, kind: str, times: dict[datetime, str] | None = None) -> None:
        self.kind = csvsafe.quoted(csvsafe.cell(kind))
        self._lines: list[str] = []
        # Each time's text, shared by the lists of one import: an import's incidents
        # hold the same report times.
        self._times = {} if times is None else times

    def add(
        self,
        at: datetime,
        ip: str | None,
        name: str | None,
        port: int | None,
        value: str,
        severity: str,
        detail: str,
    ) -> None:
        when = self._times.get(at)
        if when is None:
            when = at.strftime("%Y-%m-%d %H:%M:%S")
            if len(self._times) < 200_000:
                self._times[at] = when
        # Only the free text is escaped and maybe quoted (the name, the URL or value,
        # the detail): the time is ours, the address passed inet_pton, the port is a
        # number, the severity one of SEVERITIES.
        check = csvsafe.checked
        name = check(name) if name else ""
        value, detail = check(value), check(detail)
        free = name + value + detail
        if "," in free or '"' in free or "\n" in free or "\r" in free:  # rarely
            quoted = csvsafe.quoted
            name, value, detail = quoted(name), quoted(value), quoted(detail)
        self._lines.append(
            f"{when},{ip or ''},{name},{'' if port is None else port},{value},{self.kind},"
            f"{severity},{detail}\r\n"
        )

    @property
    def count(self) -> int:
        return len(self._lines)

    def text(self) -> str:
        out = csvsafe.Writer(CSV_HEADER)
        out.lines(self._lines)
        return out.text()


def hosts_csv(session: Session, incident_id: int) -> tuple[str, int]:
    """Every finding of the incident, oldest first, as the entity's spreadsheet; and
    how many."""
    f = ReportFindingRow
    q = (  # columns, not ORM objects: an incident can gather thousands of hosts
        select(f.seen_at, f.ip, f.name, f.port, f.value, f.kind, f.severity, f.detail)
        .where(f.incident_id == incident_id)
        .order_by(f.seen_at, f.id)
    )
    lines = [_line(r) for r in session.execute(q)]
    return csvsafe.rows(CSV_HEADER, lines), len(lines)


def remedy(kind: str, family: str) -> str:
    """The advice for a report kind: its own when it has one, else its family's."""
    data = advice()
    own = data["reports"].get(kind)
    if own:
        return str(own)
    return str(data["families"].get(family, data["families"]["informative"])["advice"])


def unattributed(
    session: Session, since: datetime | None = None, limit: int = 1000
) -> Sequence[ReportFindingRow]:
    """Findings no entity claims, newest first: the CERT decides whose they are."""
    f = ReportFindingRow  # no entity, hence no incident: read through the incident index
    q = select(f).where(f.incident_id.is_(None), f.entity_id.is_(None))
    if since is not None:
        q = q.where(ReportFindingRow.imported_at >= since)
    q = q.order_by(ReportFindingRow.seen_at.desc(), ReportFindingRow.id.desc()).limit(limit)
    return session.execute(q).scalars().all()


def unattributed_csv(rows: Sequence[ReportFindingRow]) -> str:
    return csvsafe.rows(CSV_HEADER, (_line(r) for r in rows))
