"""Findings into the store: attributed to an entity (the registry's networks by longest
prefix, then its domains), de-duplicated over a window, written in bulk, and grouped
into one incident per entity, report kind and day, each entity then notified.

Streamed in chunks so a million-row report stays within memory: per chunk, the
findings are attributed and checked against what is stored, the groups' incidents
opened (or found) and the rows inserted with their incident ids."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from correlator.alerts import EntityRef
from incidents import service, taxonomy
from incidents.models import IncidentRow
from incidents.policy import Policy
from incidents.reports.formats import SEVERITIES, advice
from incidents.reports.hosts import HostList, hosts_csv, remedy
from incidents.reports.models import ReportFindingRow, ReportIncidentRow
from incidents.reports.records import Finding

ACTOR = "system:reports"
CHUNK = 50_000
ATTRIBUTED = 500_000  # addresses whose entity (or none) is kept during one import
_UNSEEN = object()


class Attributor(Protocol):
    """The constituency as reports need it (given by the composition root)."""

    def by_address(self, ip: str) -> EntityRef | None: ...

    def by_name(self, name: str) -> EntityRef | None: ...


# (session, incident id, entity id, what the notice carries besides the incident) → queued
Notifier = Callable[[Session, int, str, dict[str, Any]], int]


@dataclass(frozen=True)
class ReportPolicy:
    dedup_window: timedelta = timedelta(hours=24)
    # A finding's severity → the NCISS level, hence the priority, of its incident:
    # critical and high give P1/P2, which certification counts as blocking.
    ncciss_by_severity: dict[str, int] = field(
        default_factory=lambda: dict(advice()["ncciss_by_severity"])
    )
    tlp: str = "amber"


@dataclass
class Summary:
    records: int = 0  # rows that named a host
    duplicates: int = 0
    ignored: int = 0  # rows naming no host (a file hash, say)
    rejected: int = 0
    attributed: int = 0
    entities: set[str] = field(default_factory=set)
    opened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unattributed: int = 0
    unattributed_sample: list[tuple[str, str]] = field(default_factory=list)  # (kind, host)
    notices: int = 0

    def add(self, other: Summary) -> None:
        for name in ("records", "duplicates", "ignored", "rejected", "attributed", "notices"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.entities |= other.entities
        self.opened += [i for i in other.opened if i not in self.opened]
        self.updated += [i for i in other.updated if i not in self.updated + self.opened]
        self.unattributed += other.unattributed
        self.unattributed_sample += other.unattributed_sample[
            : 1000 - len(self.unattributed_sample)
        ]


_COLUMNS = (
    "key, kind, seen_at, imported_at, source, severity, entity_id, incident_id, "
    "ip, name, port, value, detail, doc"
)


class _Writer:
    """Rows straight to the driver's executemany: at a million rows SQLAlchemy's
    per-row parameter processing costs more than SQLite's own insert. Times go as
    SQLAlchemy's SQLite type stores them (naive UTC text), or as aware datetimes."""

    def __init__(self, session: Session) -> None:
        self.conn = session.connection()
        self.sqlite = self.conn.dialect.name == "sqlite"
        mark = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        doc = mark if self.sqlite else f"{mark}::json"
        self._texts: dict[datetime, str] = {}
        self._big_cache = False
        self.sql = (
            f"INSERT INTO report_findings ({_COLUMNS}) VALUES ({', '.join([mark] * 13)}, {doc})"
        )

    def time(self, at: datetime) -> Any:
        if not self.sqlite:
            return at
        text = self._texts.get(at)
        if text is None:  # reports repeat their timestamps: format each once
            text = at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
            if len(self._texts) < 200_000:
                self._texts[at] = text
        return text

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            if self.sqlite and not self._big_cache:
                # The entity and incident indexes take rows in no order: with SQLite's
                # default 2 MB page cache a million rows re-read their pages over and
                # over. A larger cache for this import's connection (reset by done()).
                self.conn.exec_driver_sql("PRAGMA cache_size=-262144")
                self._big_cache = True
            self.conn.exec_driver_sql(self.sql, rows)

    def done(self) -> None:
        if self._big_cache:
            self.conn.exec_driver_sql("PRAGMA cache_size=-2000")
            self._big_cache = False


@dataclass
class _Group:
    incident_id: int
    severity: str
    new_hosts: int = 0
    opened: bool = False
    hosts: HostList | None = None  # the list, for an incident this import opened


class _Dedup:
    """Keys seen within the window: this import's and the store's, loaded per kind
    over the time span the import covers (extended as later chunks need)."""

    def __init__(self, session: Session, window: timedelta) -> None:
        self.session, self.window = session, window
        self.latest: dict[tuple[str, str], datetime] = {}
        self.loaded: dict[str, tuple[datetime, datetime]] = {}

    def _load(self, kind: str, lo: datetime, hi: datetime) -> None:
        span = self.loaded.get(kind)
        ranges = [(lo, hi)] if span is None else [(lo, span[0]), (span[1], hi)]
        for a, b in ranges:
            if a >= b:
                continue
            q = select(ReportFindingRow.key, ReportFindingRow.seen_at).where(
                ReportFindingRow.kind == kind,
                ReportFindingRow.seen_at >= a,
                ReportFindingRow.seen_at <= b,
            )
            for key, at in self.session.execute(q):
                self._note(kind, key, at)
        self.loaded[kind] = (lo, hi) if span is None else (min(lo, span[0]), max(hi, span[1]))

    def _note(self, kind: str, key: str, at: datetime) -> None:
        prev = self.latest.get((kind, key))
        if prev is None or at > prev:
            self.latest[(kind, key)] = at

    def prepare(self, chunk: list[Finding]) -> None:
        spans: dict[str, tuple[datetime, datetime]] = {}
        for f in chunk:
            lo, hi = spans.get(f.kind, (f.at, f.at))
            spans[f.kind] = (min(lo, f.at), max(hi, f.at))
        for kind, (lo, hi) in spans.items():
            self._load(kind, lo - self.window, hi + self.window)

    def seen(self, f: Finding) -> bool:
        k = (f.kind, f.key)
        prev = self.latest.get(k)
        if prev is not None:
            if abs(f.at - prev) < self.window:
                return True
            if prev > f.at:
                return False
        self.latest[k] = f.at
        return False


def _title(f: Finding, title: str, entity: str, day: str) -> str:
    label = advice()["families"].get(f.family, {}).get("label", "Informe externo")
    return f"{label}: {title} — {entity} ({day})"[:300]


class Intake:
    """One import (a file, a mail, a fetched feed, or several): call `add` per source,
    then `finish` to notify."""

    def __init__(
        self,
        session: Session,
        attributor: Attributor,
        policy: Policy,
        rpolicy: ReportPolicy,
        actor: str = ACTOR,
    ) -> None:
        self.session, self.attributor = session, attributor
        self.policy, self.rpolicy, self.actor = policy, rpolicy, actor
        self.summary = Summary()
        self._dedup = _Dedup(session, rpolicy.dedup_window)
        self._groups: dict[tuple[str, str, str], _Group] = {}
        self._titles: dict[str, tuple[str, str]] = {}  # kind → (report title, family)
        self._writer = _Writer(session)
        self._by_ip: dict[str, object] = {}

    def _entity(self, f: Finding) -> EntityRef | None:
        e = None
        if f.ip:
            # Through the prefix tree once per distinct address: reports name the same
            # hosts again and again (kept up to ATTRIBUTED addresses, then started over).
            cached = self._by_ip.get(f.ip, _UNSEEN)
            if cached is _UNSEEN:
                if len(self._by_ip) >= ATTRIBUTED:
                    self._by_ip.clear()
                cached = self._by_ip[f.ip] = self.attributor.by_address(f.ip)
            e = cached if isinstance(cached, EntityRef) else None
        if e is None and f.name:
            e = self.attributor.by_name(f.name)
        return e

    def add(self, findings: Iterable[Finding], source: str, title: str) -> None:
        it = iter(findings)
        while chunk := list(itertools.islice(it, CHUNK)):
            self._chunk(chunk, source, title)

    def _chunk(self, chunk: list[Finding], source: str, title: str) -> None:
        s, now = self.summary, utcnow()
        self._dedup.prepare(chunk)
        w = self._writer
        imported = w.time(now)
        rows: list[tuple[Any, ...]] = []
        for f in chunk:
            s.records += 1
            if self._dedup.seen(f):
                s.duplicates += 1
                continue
            e = self._entity(f)
            incident_id = None
            if e is None:
                s.unattributed += 1
                if len(s.unattributed_sample) < 1000:
                    s.unattributed_sample.append((f.kind, f.value))
            else:
                f.entity_id, f.entity_name = e.id, e.name
                f.doc["organization"] = {"id": e.id, "name": e.name}
                s.attributed += 1
                s.entities.add(e.id)
                g = self._group(f, title)
                incident_id = g.incident_id
                if g.hosts is not None:
                    g.hosts.add(f)
            rows.append(
                (
                    f.key,
                    f.kind,
                    w.time(f.at),
                    imported,
                    source[:300],
                    f.severity,
                    f.entity_id,
                    incident_id,
                    f.ip,
                    f.name[:300] if f.name else None,
                    f.port,
                    f.value,
                    f.detail,
                    orjson.dumps(f.doc).decode(),
                )
            )
        w.write(rows)

    def _group(self, f: Finding, title: str) -> _Group:
        assert f.entity_id is not None
        day = f.at.date().isoformat()
        gkey = (f.entity_id, f.kind, day)
        g = self._groups.get(gkey)
        if g is None:
            g = self._open_or_find(f, title, day)
            self._groups[gkey] = g
            self._titles[f.kind] = (title, f.family)
        g.new_hosts += 1
        if SEVERITIES.index(f.severity) > SEVERITIES.index(g.severity):
            g.severity = f.severity
        return g

    def _open_or_find(self, f: Finding, title: str, day: str) -> _Group:
        assert f.entity_id is not None
        held = self.session.get(ReportIncidentRow, (f.entity_id, f.kind, day))
        if held is not None:
            return _Group(held.incident_id, held.severity)
        inc = service.open_incident(
            self.session,
            self.policy,
            self.actor,
            title=_title(f, title, f.entity_name or f.entity_id, day),
            summary=(
                f"Informe externo {title} ({f.kind}) del {day}: equipos de {f.entity_name} "
                "señalados por la fuente. La lista va adjunta a la notificación."
            ),
            rsit_class=f.rsit[0],
            rsit_type=f.rsit[1],
            tlp=self.rpolicy.tlp,
            ncciss=self.rpolicy.ncciss_by_severity.get(f.severity, 1),
        )
        inc.occurred_at = f.at
        service.add_entity(self.session, inc, f.entity_id)
        self.session.add(
            ReportIncidentRow(
                entity_id=f.entity_id,
                kind=f.kind,
                day=day,
                incident_id=inc.id,
                severity=f.severity,
                hosts=0,
            )
        )
        self.session.flush()
        self.summary.opened.append(inc.id)
        return _Group(inc.id, f.severity, opened=True, hosts=HostList())

    def finish(self, notifier: Notifier | None, source: str) -> Summary:
        """Bring each touched incident up to date (severity, hosts, timeline), queue the
        notices, and leave one audit record for the whole import."""
        s = self.summary
        self._writer.done()
        for (entity_id, kind, day), g in self._groups.items():
            if not g.new_hosts:
                continue
            held = self.session.get(ReportIncidentRow, (entity_id, kind, day))
            inc = self.session.get(IncidentRow, g.incident_id)
            if held is None or inc is None:
                continue
            held.hosts += g.new_hosts
            level = self.rpolicy.ncciss_by_severity.get(g.severity, 1)
            if SEVERITIES.index(g.severity) > SEVERITIES.index(held.severity):
                held.severity = g.severity
            if level > inc.ncciss:  # a worse finding raises the incident's priority
                inc.ncciss, inc.priority = level, taxonomy.priority_of(level)
                service.set_due_times(inc, self.policy)
            inc.updated_at = utcnow()
            service.record(
                self.session,
                inc,
                "report",
                self.actor,
                body=f"{g.new_hosts} hallazgo(s) nuevos de {kind} ({source})",
                entity_id=entity_id,
                report=kind,
                hosts=g.new_hosts,
            )
            if not g.opened and g.incident_id not in s.updated:
                s.updated.append(g.incident_id)
            if notifier is not None:
                self.session.flush()
                s.notices += notifier(
                    self.session, g.incident_id, entity_id, self.notice(g.incident_id, kind, g)
                )
        audit.append(
            self.session,
            self.actor,
            "reports.import",
            "report",
            source[:200],
            {
                "records": s.records,
                "duplicates": s.duplicates,
                "attributed": s.attributed,
                "unattributed": s.unattributed,
                "opened": s.opened,
                "updated": s.updated,
            },
        )
        return s

    def notice(self, incident_id: int, kind: str, g: _Group | None = None) -> dict[str, Any]:
        """What the e-mail adds for a report: the advice, and the hosts as CSV (all
        of the incident's, read back when earlier imports added some)."""
        title, family = self._titles.get(kind, (kind, "informative"))
        if g is not None and g.hosts is not None:
            text, hosts = g.hosts.text(), g.hosts.count
        else:
            text, hosts = hosts_csv(self.session, incident_id)
        return {
            "report": {
                "kind": kind,
                "title": title,
                "advice": remedy(kind, family),
                "csv_name": f"vigia-{kind}-incidente-{incident_id}.csv",
                "csv": text,
                "hosts": hosts,
            }
        }
