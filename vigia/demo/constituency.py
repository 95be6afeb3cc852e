"""The demo constituency: about 300 public entities of every level with eighteen
months of certification history, so the national dashboard, the review queue and
the forecast show real shapes on a first start.

Deterministic (one seed): the same entities, states and dates relative to `now`
on every load. Networks come only from the documentation ranges (RFC 5737,
RFC 3849) and domains only under the reserved `.example` TLD (RFC 2606), so no
demo alert can ever name a real network. Rows are written in bulk, like
certification/generate.py, without audit records: this is demo data, not a
registry anyone changed. The department of a municipality, an indigenous
autonomy or a departmental body (assembly, courts, comptroller) is its parent
entity, its departmental government (`gad-<dpto>`); the registry has no
department field (certification.progress_query follows `parent_id`).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import insert
from sqlalchemy.orm import Session

from certification import catalogue, progress, snapshots
from certification.models import AnswerRow, AssessmentRow, CertificateRow, ProgressSnapshotRow
from certification.registry import EntityRow
from certification.scoring import Answer, score
from vigia.demo import names

SEED = 16
HISTORY_DAYS = 548  # eighteen months of daily snapshots
DOC_V4 = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
DOC_V6 = "2001:db8::/32"
TLD = ".example"
STATES = (
    "certified",
    "conditional",
    "expired",
    "revoked",
    "suspended",
    "in_review",
    "submitted",
    "returned",
    "in_progress",
    "not_started",
)
OPEN = ("in_review", "submitted", "returned", "in_progress")
# How often each state is today, by level (the rest use "default"): central
# bodies further ahead, indigenous autonomies and small towns behind.
WEIGHTS = {
    "default": (33, 7, 6, 2, 2, 5, 5, 4, 16, 20),
    "central": (45, 8, 5, 2, 2, 6, 5, 3, 14, 10),
    "university": (40, 8, 6, 2, 1, 6, 6, 4, 17, 10),
    "indigenous": (15, 8, 5, 1, 1, 4, 4, 5, 22, 35),
}
DAY = timedelta(days=1)
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass
class Demo:
    entities: list[EntityRow] = field(default_factory=list)
    certified_now: int = 0


def _entities(rng: random.Random) -> Iterator[tuple[str, str, str, str | None]]:
    """(id, name, level, parent id) of every demo entity."""
    towns = names.places(rng, 205)
    for m in names.MINISTRIES:
        yield f"min-{names.slug(m)[:40]}", f"Ministerio de {m}", "central", None
    for kind, topic in zip(
        names.AGENCY_KINDS * 5, names.AGENCY_TOPICS, strict=False
    ):  # three kinds in turn
        yield f"ag-{names.slug(topic)[:40]}", f"{kind} {topic}", "central", None
    for code, dept in names.DEPARTMENTS:
        yield f"gad-{code}", f"Gobierno Autónomo Departamental de {dept}", "departmental", None
        gad = f"gad-{code}"  # the department's bodies hang from its government
        yield f"ald-{code}", f"Asamblea Legislativa Departamental de {dept}", "legislative", gad
        yield f"tdj-{code}", f"Tribunal Departamental de Justicia de {dept}", "judicial", gad
        yield f"ted-{code}", f"Tribunal Electoral Departamental de {dept}", "electoral", gad
    codes = [c for c, _ in names.DEPARTMENTS]
    # La Paz, Cochabamba, Santa Cruz and Potosí have the most municipalities.
    dept_weights = (22, 15, 20, 12, 14, 10, 5, 8, 4)
    for town in towns[:165]:
        code = rng.choices(codes, dept_weights)[0]
        yield (
            f"gam-{names.slug(town)[:40]}",
            f"Gobierno Autónomo Municipal de {town}",
            "municipal",
            f"gad-{code}",
        )
    for town in towns[165:189]:
        code = rng.choice(("lpz", "oru", "pts", "chq", "scz", "ben", "cbba"))
        nation = rng.choice(names.NATIONS)
        yield (
            f"aioc-{names.slug(town)[:40]}",
            f"Autonomía Indígena Originaria Campesina {nation} de {town}",
            "indigenous",
            f"gad-{code}",
        )
    for kind, town in zip(names.UNIVERSITY_KINDS * 4, towns[189:203], strict=False):
        yield f"univ-{names.slug(town)[:40]}", f"{kind} {town}", "university", None
    for n, sector in enumerate(names.COMPANY_SECTORS):
        kind = ("Empresa Pública Nacional de", "Empresa Estatal de")[n % 2]
        yield f"ep-{names.slug(sector)[:40]}", f"{kind} {sector}", "state_company", None
    for code, dept in names.DEPARTMENTS[:5]:
        yield f"ctr-{code}", f"Contraloría Regional de {dept}", "other", f"gad-{code}"


def networks() -> Iterator[tuple[str, str]]:
    """(IPv4 /31, IPv6 /48) pairs, all inside the documentation ranges: the three
    IPv4 /24s hold 384 /31s (two public addresses each, a gateway and a server),
    so 384 entities at most."""
    v6 = ipaddress.ip_network(DOC_V6)
    n = 0
    for block in DOC_V4:
        for sub in ipaddress.ip_network(block).subnets(new_prefix=31):
            yield str(sub), str(ipaddress.ip_network((int(v6.network_address) + (n << 80), 48)))
            n += 1


def _cert_id(rng: random.Random) -> str:
    body = "".join(rng.choice(_ALPHABET) for _ in range(16))
    return f"VIG-{body[:4]}-{body[4:8]}-{body[8:12]}-{body[12:]}"


def _answers(rng: random.Random, controls: list[str], share: float) -> dict[str, str]:
    picked = [c for c in controls if rng.random() < share] if share < 1 else controls
    kinds = ("implemented", "partial", "not_implemented", "not_applicable")
    return {c: rng.choices(kinds, (60, 20, 12, 8))[0] for c in picked}


def load(session: Session, now: datetime) -> Demo:
    """Write the demo constituency; the caller's transaction commits it."""
    rng = random.Random(SEED)
    cat = catalogue.get(session)
    controls = [c.id for c in cat.controls]
    demo = Demo()
    nets = networks()
    spans: list[tuple[str, str, datetime, datetime]] = []  # level, entity, from, to
    created: dict[str, tuple[str, datetime]] = {}
    certs: list[tuple[CertificateRow, AssessmentRow]] = []
    opened: list[tuple[AssessmentRow, dict[str, str], str]] = []
    for eid, name, level, parent in _entities(rng):
        v4, v6 = next(nets)
        tld = ".edu" if level == "university" else ".gob"
        late = rng.random() < 0.1  # a tenth registered during the last eighteen months
        born = now - DAY * (rng.uniform(40, 480) if late else rng.uniform(560, 700))
        demo.entities.append(
            EntityRow(
                id=eid,
                name=name,
                level=level,
                networks=[v4, v6],
                domains=[f"{eid.split('-', 1)[1][:30].strip('-')}{tld}{TLD}"],
                parent_id=parent,
                contacts=[{"name": "Oficial de Seguridad", "email": f"seguridad@{eid}{tld}{TLD}"}],
                webhook_url="",
                webhook_secret="",
                active=True,
                created_at=born,
                updated_at=born,
            )
        )
        created[eid] = (level, born)
        state = rng.choices(STATES, WEIGHTS.get(level, WEIGHTS["default"]))[0]
        age = (now - born) / DAY - 20  # certified at least 20 days after registering
        if state in ("certified", "revoked", "suspended"):
            first = min(age, 15 + 560 * rng.random() ** 1.6)
            if state != "certified":
                first = max(first, 60)
            chain, issued = [], now - DAY * first
            while issued <= now:
                chain.append(issued)
                issued += DAY * (365 - rng.uniform(0, 20))  # renewed before it lapses
            for k, start in enumerate(chain):
                c = _certificate(rng, eid, "certified", start, 365)
                if k + 1 < len(chain):
                    c.status, c.updated_at = "expired", chain[k + 1]
                elif state != "certified":
                    c.status = state
                    c.updated_at = start + (now - start) * rng.uniform(0.3, 0.9)
                    c.reason = (
                        "incidente P1 sin contener"
                        if state == "suspended"
                        else "evidencia falsificada"
                    )
                certs.append((c, _decided(rng, cat.version, eid, start, "certified")))
        elif state == "conditional":
            start = now - DAY * min(age, rng.uniform(5, 175))
            c = _certificate(rng, eid, "conditional", start, 180)
            certs.append((c, _decided(rng, cat.version, eid, start, "conditional")))
        elif state == "expired":
            start = now - DAY * min(max(age, 370), rng.uniform(370, 560))
            c = _certificate(rng, eid, "certified", start, 365)
            c.status, c.updated_at = "expired", c.valid_until
            certs.append((c, _decided(rng, cat.version, eid, start, "certified")))
        elif state in OPEN:
            began = now - DAY * min(age, rng.uniform(5, 200))
            share = rng.uniform(0.15, 0.9) if state == "in_progress" else 1.0
            a = AssessmentRow(
                entity_id=eid,
                catalogue_version=cat.version,
                status=state,
                decision_reasons=[],
                progress=0.0,  # scored below, once the answers are written
                created_at=began,
                updated_at=began + (now - began) * 0.8,
                submitted_at=None if state == "in_progress" else now - DAY * rng.uniform(1, 25),
            )
            opened.append((a, _answers(rng, controls, share), state))
    # tests/test_demo.py checks that SEED leaves no state out.
    session.add_all(demo.entities)
    session.flush()
    session.add_all([a for _, a in certs] + [a for a, _, _ in opened])
    session.flush()  # the assessment ids, from the database
    for c, a in certs:
        c.assessment_id = a.id
        spans.append((created[c.entity_id][0], *progress._span(c)))
    session.add_all([c for c, _ in certs])
    rows = []
    for a, answers, state in opened:
        reviewed = {"in_review": 0.5, "returned": 1.0}.get(state, 0.0)
        scored = {}
        for control, answer in answers.items():
            verdict = None
            if rng.random() < reviewed:
                verdict = "rejected" if state == "returned" and rng.random() < 0.15 else "accepted"
            scored[control] = Answer(answer, verdict)
            rows.append(
                {
                    "assessment_id": a.id,
                    "control_id": control,
                    "answer": answer,
                    "justification": "El servicio no se presta en la entidad."
                    if answer == "not_applicable"
                    else "",
                    "review": verdict,
                    "review_comment": "Adjunte la política firmada y vigente."
                    if verdict == "rejected"
                    else "",
                    "reviewed_by": "demo:revisor" if verdict else "",
                    "updated_at": a.updated_at,
                }
            )
        s = score(cat, scored, now.date())
        a.score, a.progress = s.overall, round(s.progress, 4)
    if rows:
        session.execute(insert(AnswerRow), rows)
    session.flush()
    _backfill(session, now, spans, created)
    snapshots.take(session, now)
    return demo


def _certificate(
    rng: random.Random, eid: str, level: str, start: datetime, days: int
) -> CertificateRow:
    return CertificateRow(
        id=_cert_id(rng),
        entity_id=eid,
        level=level,
        status="valid",
        score=round(rng.uniform(0.82, 0.97) if level == "certified" else rng.uniform(0.66, 0.8), 4),
        issued_at=start,
        valid_until=start + DAY * days,
        observation="",
        reason="",
        reminders=[],
        updated_at=start,
    )


def _decided(
    rng: random.Random, version: str, eid: str, issued: datetime, level: str
) -> AssessmentRow:
    began = issued - DAY * rng.uniform(30, 90)
    return AssessmentRow(
        entity_id=eid,
        catalogue_version=version,
        status="decided",
        decision=level,
        decision_reasons=[] if level == "certified" else ["controles obligatorios pendientes"],
        score=round(rng.uniform(0.82, 0.97) if level == "certified" else rng.uniform(0.66, 0.8), 4),
        progress=1.0,
        created_at=began,
        updated_at=issued,
        submitted_at=issued - DAY * rng.uniform(5, 20),
        decided_at=issued,
    )


def _backfill(
    session: Session,
    now: datetime,
    spans: list[tuple[str, str, datetime, datetime]],
    created: dict[str, tuple[str, datetime]],
) -> None:
    """One progress snapshot a day for eighteen months, as the daily job would have
    taken them, from the certificate spans written above."""
    rows = []
    for back in range(HISTORY_DAYS, 0, -1):
        day = (now - DAY * back).date()
        t = datetime.combine(day, time(23, 0), UTC)
        total: dict[str, int] = {}
        for level, born in created.values():
            if born <= t:
                total[level] = total.get(level, 0) + 1
        covered: dict[str, set[str]] = {}
        for level, eid, start, end in spans:
            if start <= t < end:
                covered.setdefault(level, set()).add(eid)
        n, m = sum(len(v) for v in covered.values()), sum(total.values())
        rows.append(
            {
                "day": day,
                "taken_at": t,
                "target": progress.TARGET,
                "certified": n,
                "total": m,
                "ratio": round(n / m, 4) if m else 0.0,
                "by_level": {
                    lv: {"certified": len(covered.get(lv, ())), "total": k}
                    for lv, k in total.items()
                },
            }
        )
    session.execute(insert(ProgressSnapshotRow), rows)
