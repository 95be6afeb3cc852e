"""Findings into the store: attributed to an entity (the registry's networks by longest
prefix, then its domains), de-duplicated over a window, written in bulk, and grouped
into one incident per entity, report kind and day, each entity then notified.

Streamed in chunks so a million-row report stays within memory: per chunk, the
findings are attributed and checked against what is stored, the groups' incidents
opened (or found) and the rows inserted with their incident ids."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import event
from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from correlator.alerts import EntityRef
from incidents import service, taxonomy
from incidents.models import IncidentRow
from incidents.policy import Policy
from incidents.reports.bulk import Dedup, Writer
from incidents.reports.formats import advice
from incidents.reports.hosts import HostList, hosts_csv, remedy
from incidents.reports.models import ReportIncidentRow
from incidents.reports.records import RANK, Class, Finding

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


@dataclass(slots=True)
class _Group:
    incident_id: int
    severity: str
    new_hosts: int = 0
    opened: bool = False
    hosts: HostList | None = None  # the list, for an incident this import opened


def _title(family: str, title: str, entity: str, day: str) -> str:
    label = advice()["families"].get(family, {}).get("label", "Informe externo")
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
        self._dedup = Dedup(session, rpolicy.dedup_window)
        self._groups: dict[tuple[str, str, str], _Group] = {}
        self._titles: dict[str, tuple[str, str]] = {}  # kind → (report title, family)
        self._writer = Writer(session)
        # The entity (or None) of each address and name met, and each entity's end of
        # the document: a report names the same hosts and entities again and again.
        self._by_ip: dict[str, object] = {}
        self._by_name: dict[str, object] = {}
        self._orgs: dict[str, str] = {}
        self._times: dict[datetime, str] = {}  # the host lists' time texts
        # The rows this import writes or reads through the session (incidents, their
        # entities and timelines), held: the session's identity map only references
        # them weakly, so finishing and notifying would read each back one by one.
        self._held: list[object] = []
        event.listen(session, "pending_to_persistent", self._hold)
        event.listen(session, "loaded_as_persistent", self._hold)

    def _hold(self, _session: Session, obj: object) -> None:
        self._held.append(obj)

    def _org(self, e: EntityRef) -> str:
        """The end of an attributed finding's document: its entity, as JSON text."""
        tail = self._orgs.get(e.id)
        if tail is None:
            org = orjson.dumps({"id": e.id, "name": e.name}).decode()
            tail = self._orgs[e.id] = f',"organization":{org}}}'
        return tail

    def add(
        self,
        findings: Iterable[Finding],
        source: str,
        title: str,
        kind: str,
        classes: Sequence[Class],
    ) -> None:
        """One source's findings, all of one report kind (`classes`: the RSIT class and
        family each finding's `cls` points at)."""
        it = iter(findings)
        while chunk := list(itertools.islice(it, CHUNK)):
            self._chunk(chunk, source[:300], title, kind, classes)

    def _chunk(
        self, chunk: list[Finding], source: str, title: str, kind: str, classes: Sequence[Class]
    ) -> None:
        s, w = self.summary, self._writer
        latest = self._dedup.of(kind, min(f[1] for f in chunk), max(f[1] for f in chunk))
        window, by_ip, by_name = self.rpolicy.dedup_window, self._by_ip, self._by_name
        attributor, groups, orgs = self.attributor, self._groups, self._orgs
        imported, wtime, sample = w.time(utcnow()), w.time, s.unattributed_sample
        stored_time = w.texts.get  # a time's text, once formatted (SQLite)
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        duplicates = unattributed = 0
        for f in chunk:
            key, at, day, severity, ip, name, port, value, detail, doc, cls = f
            prev = latest.get(key)
            if prev is None:
                latest[key] = at
            elif abs(at - prev) < window:
                duplicates += 1
                continue
            elif prev < at:
                latest[key] = at
            e = None
            if ip:
                # Through the prefix tree once per distinct address: reports name the
                # same hosts again and again (kept up to ATTRIBUTED, then started over).
                e = by_ip.get(ip, _UNSEEN)
                if e is _UNSEEN:
                    if len(by_ip) >= ATTRIBUTED:
                        by_ip.clear()
                    e = by_ip[ip] = attributor.by_address(ip)
            if e is None and name:
                e = by_name.get(name, _UNSEEN)
                if e is _UNSEEN:
                    if len(by_name) >= ATTRIBUTED:
                        by_name.clear()
                    e = by_name[name] = attributor.by_name(name)
            if e is None:
                unattributed += 1
                if len(sample) < 1000:
                    sample.append((kind, value))
                entity_id = incident_id = None
            else:
                assert isinstance(e, EntityRef)
                entity_id = e.id
                g = groups.get((entity_id, kind, day))
                if g is None:
                    g = self._open_or_find(e, kind, day, at, severity, classes[cls], title)
                incident_id = g.incident_id
                g.new_hosts += 1
                if severity != g.severity and RANK[severity] > RANK[g.severity]:
                    g.severity = severity
                if g.hosts is not None:
                    g.hosts.add(at, ip, name, port, value, severity, detail)
                if doc.__class__ is str:
                    doc = doc[:-1] + (orgs.get(entity_id) or self._org(e))
                else:  # the mapping fills `organization`: the entity takes its place
                    doc["organization"] = {"id": e.id, "name": e.name}
            if doc.__class__ is not str:
                doc = orjson.dumps(doc).decode()
            append(
                (
                    key,
                    kind,
                    stored_time(at) or wtime(at),
                    imported,
                    source,
                    severity,
                    entity_id,
                    incident_id,
                    ip,
                    name[:300] if name else None,
                    port,
                    value,
                    detail,
                    doc,
                )
            )
        w.write(rows)
        s.records += len(chunk)
        s.duplicates += duplicates
        s.unattributed += unattributed
        s.attributed += len(chunk) - duplicates - unattributed

    def _open_or_find(
        self,
        e: EntityRef,
        kind: str,
        day: str,
        at: datetime,
        severity: str,
        cls: Class,
        title: str,
    ) -> _Group:
        """The group of an entity's findings of one kind and day: its incident, opened
        now or by an earlier import of the day."""
        (rsit, family), gkey = cls, (e.id, kind, day)
        self._titles[kind] = (title, family)
        self.summary.entities.add(e.id)
        held = self.session.get(ReportIncidentRow, gkey)
        if held is not None:
            g = self._groups[gkey] = _Group(held.incident_id, held.severity)
            return g
        inc = service.open_incident(
            self.session,
            self.policy,
            self.actor,
            title=_title(family, title, e.name or e.id, day),
            summary=(
                f"Informe externo {title} ({kind}) del {day}: equipos de {e.name} "
                "señalados por la fuente. La lista va adjunta a la notificación."
            ),
            rsit_class=rsit[0],
            rsit_type=rsit[1],
            tlp=self.rpolicy.tlp,
            ncciss=self.rpolicy.ncciss_by_severity.get(severity, 1),
        )
        inc.occurred_at = at
        service.add_entity(self.session, inc, e.id)
        held = ReportIncidentRow(
            entity_id=e.id, kind=kind, day=day, incident_id=inc.id, severity=severity, hosts=0
        )
        self.session.add(held)
        self.session.flush()
        self.summary.opened.append(inc.id)
        g = self._groups[gkey] = _Group(
            inc.id, severity, opened=True, hosts=HostList(kind, self._times)
        )
        return g

    def finish(self, notifier: Notifier | None, source: str) -> Summary:
        """Bring each touched incident up to date (severity, hosts, timeline), queue the
        notices, and leave one audit record for the whole import."""
        self._writer.done()
        try:
            return self._finish(notifier, source)
        finally:
            event.remove(self.session, "pending_to_persistent", self._hold)
            event.remove(self.session, "loaded_as_persistent", self._hold)
            self._held.clear()

    def _finish(self, notifier: Notifier | None, source: str) -> Summary:
        s = self.summary
        # One flush at the end for every incident's changes, timeline entries and
        # notices, not one per incident: what the loop reads (preferences, contacts,
        # an incident's entities and held digest items) is none of what it writes.
        with self.session.no_autoflush:
            self._update(notifier, source)
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

    def _update(self, notifier: Notifier | None, source: str) -> None:
        """Each touched incident brought up to date and its notice queued."""
        s = self.summary
        for (entity_id, kind, day), g in self._groups.items():
            if not g.new_hosts:
                continue
            held = self.session.get(ReportIncidentRow, (entity_id, kind, day))
            inc = self.session.get(IncidentRow, g.incident_id)
            if held is None or inc is None:
                continue
            held.hosts += g.new_hosts
            level = self.rpolicy.ncciss_by_severity.get(g.severity, 1)
            if RANK[g.severity] > RANK[held.severity]:
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
                s.notices += notifier(
                    self.session, g.incident_id, entity_id, self.notice(g.incident_id, kind, g)
                )
            g.hosts = None  # its CSV is in the notice: the list goes as the next one comes

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
