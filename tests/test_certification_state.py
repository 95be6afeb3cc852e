"""certification_state and certification_trend (certification.progress_state) follow
every kind of change: after each one, the national figures read from them equal
those of the tables rewritten from scratch and those of an independent count in
Python (`progress.states`: each entity's newest certificate and assessment through
`certificates.state_of`, the trend from every certificate's span), on SQLite and
PostgreSQL. A certificate lapsing is seen without any write."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text

from certification import generate, progress, progress_state, registry
from certification.models import CertificateRow, CertStateRow, CertTrendRow
from certification.registry import EntityRow, Registry
from core.clock import utcnow
from tests.cert_helpers import controls, fill, review_all, world
from vigia.wiring import Services

CERTIFIED = progress.CERTIFIED


def _department(entities: dict[str, Any], eid: str) -> str:
    """The highest departmental entity among the entity, its parent, its grandparent."""
    chain = [eid]
    for _ in range(2):
        parent = entities[chain[-1]].parent_id if chain[-1] in entities else None
        if parent is None:
            break
        chain.append(parent)
    for e in reversed(chain):
        if e in entities and entities[e].level == "departmental":
            return e
    return ""


def _by_python(s: Any, now: datetime) -> dict[str, Any]:
    """The figures counted row by row, without certification_state."""
    rows, spans, active = progress.states(s, now)
    entities = {e.id: e for e in s.execute(select(EntityRow)).scalars()}
    by_state = Counter(r.state for r in rows)
    by_level: dict[str, list[int]] = {}
    by_dept: dict[str, list[int]] = {}
    for r in rows:
        for bucket in (
            by_level.setdefault(r.level, [0, 0]),
            by_dept.setdefault(_department(entities, r.id), [0, 0]),
        ):
            bucket[0] += r.state in CERTIFIED
            bucket[1] += 1
    trend = []
    for _, t in progress._month_ends(now, 12):
        covered = {e for e, start, end in spans if e in active and start <= t < end}
        trend.append((len(covered), sum(1 for when in active.values() if when <= t)))
    soon = now + timedelta(days=progress.EXPIRING_DAYS)
    uncertified = [r for r in rows if r.state not in CERTIFIED]
    uncertified.sort(key=lambda r: (-(r.score if r.score is not None else -1.0), -r.progress, r.id))
    return {
        "certified": sum(by_state[k] for k in CERTIFIED),
        "total": len(rows),
        "by_state": {k: by_state[k] for k in progress.STATES},
        "by_level": {k: tuple(v) for k, v in by_level.items()},
        "by_department": {k: tuple(v) for k, v in by_dept.items()},
        "trend": trend,
        "expiring": sorted(
            (r.valid_until, r.id)
            for r in rows
            if r.state in CERTIFIED and r.valid_until is not None and r.valid_until <= soon
        ),
        "closest": [r.id for r in uncertified[:10]],
    }


def _comparable(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "certified": p["certified"],
        "total": p["total"],
        "by_state": p["by_state"],
        "by_level": {k: (v["certified"], v["total"]) for k, v in p["by_level"].items()},
        "by_department": {k: (v["certified"], v["total"]) for k, v in p["by_department"].items()},
        "trend": [(t["certified"], t["total"]) for t in p["trend"]],
        "expiring": [(datetime.fromisoformat(e["valid_until"]), e["id"]) for e in p["expiring"]],
        "closest": [c["id"] for c in p["closest"]],
    }


def _tables(s: Any) -> tuple[list[Any], list[Any]]:
    states = [
        tuple(getattr(r, c.key) for c in CertStateRow.__table__.columns)
        for r in s.execute(select(CertStateRow).order_by(CertStateRow.entity_id)).scalars()
    ]
    trend = [
        (r.month, r.covered, r.registered)
        for r in s.execute(select(CertTrendRow).order_by(CertTrendRow.month)).scalars()
        if r.covered or r.registered  # a month whose counts fell back to nothing
    ]
    return states, trend


def check(services: Services, now: datetime | None = None) -> dict[str, Any]:
    """The figures from the kept tables equal those from the tables rewritten from
    scratch and the count in Python; the rewrite is rolled back."""
    now = now or utcnow()
    with services.db.transaction() as s:
        kept, kept_tables = progress.progress(s, now), _tables(s)
        progress_state.rebuild(s.connection())
        fresh, fresh_tables = progress.progress(s, now), _tables(s)
        python = _by_python(s, now)
        s.rollback()
    assert kept_tables == fresh_tables
    assert kept == fresh
    assert _comparable(kept) == python
    return kept


def test_the_kept_state_follows_every_kind_of_change(
    client: TestClient, services: Services
) -> None:
    now = utcnow()
    with services.db.transaction() as s:
        generate.constituency(s, 60, now - timedelta(days=3), "2026.1")
        if s.get_bind().dialect.name == "postgresql":  # generate writes the ids itself
            s.execute(
                text("SELECT setval('assessments_id_seq', (SELECT max(id) FROM assessments))")
            )
    h = world(services)  # ent-a (central), ent-b (municipal)
    an = h["analyst"]
    first = check(services)
    assert (first["certified"], first["total"]) == (33, 62)

    # Entities: added, placed under a department, their department's level changed.
    with services.db.transaction() as s:
        Registry.add(s, "ent-c", "Entidad C", "municipal", ["10.3.0.0/16"], [], "t")
    assert check(services)["total"] == 63
    with services.db.transaction() as s:
        registry.update(s, "ent-c", "Entidad C", "municipal", [], [], "ent-00001", True, "t")
    assert check(services)["by_department"]["ent-00001"]["total"] == 2
    with services.db.transaction() as s:  # ent-00001 stops being a department: ent-c too
        registry.update(s, "ent-00001", "Entidad 1", "municipal", [], [], None, True, "t")
    assert "ent-00001" not in check(services)["by_department"]

    # An assessment answered, submitted, reviewed and decided: a certificate granted.
    a = fill(client, services, h["a"])
    assert check(services)["by_state"]["in_progress"] == 7  # six generated, ent-a
    assert client.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"]).status_code == 200
    assert check(services)["by_state"]["submitted"] == 4
    review_all(client, an, a["id"])
    assert check(services)["by_state"]["in_review"] == 4
    r = client.post(f"/api/v1/assessments/{a['id']}/decision", json={}, headers=an)
    assert r.status_code == 200, r.text
    assert check(services)["certified"] == 34
    cert = client.get("/api/v1/certificates", params={"entity_id": "ent-a"}, headers=an).json()[0]
    url = f"/api/v1/certificates/{cert['id']}"

    # Suspended, reinstated, revoked.
    assert client.post(f"{url}/suspend", json={"reason": "x"}, headers=an).status_code == 200
    assert check(services)["by_state"]["suspended"] == 4
    assert client.post(f"{url}/reinstate", json={}, headers=an).status_code == 200
    assert check(services)["certified"] == 34
    assert client.post(f"{url}/revoke", json={"reason": "fraude"}, headers=an).status_code == 200
    assert check(services)["by_state"]["revoked"] == 4

    # Renewal: ent-b certified twice, the first certificate ends with the second. Its
    # assessments answer one control (implemented, evidenced, reviewed) and the rest
    # not applicable: the same changes (answers, evidence, review, a certificate
    # granted and ended) at a third of the requests of a full one.
    one = {controls(services)[0].id: "implemented"}
    for _ in range(2):
        b = fill(client, services, h["b"], one, default="not_applicable")
        client.post(f"/api/v1/assessments/{b['id']}/submit", headers=h["b"])
        review_all(client, an, b["id"])
        r = client.post(f"/api/v1/assessments/{b['id']}/decision", json={}, headers=an)
        assert r.status_code == 200, r.text
    assert check(services)["certified"] == 34

    # A certificate lapsing by date, without any write; then the expiry job's write.
    later = utcnow() + timedelta(days=400)
    lapsed = check(services, later)
    assert lapsed["certified"] == 0 and lapsed["by_state"]["expired"] > 0
    with services.db.transaction() as s:
        from certification import certificates

        assert certificates.expire_due(s, later, "t")
    after = check(services, later)  # (the job also ends suspended ones: not compared)
    assert (after["certified"], after["by_state"]["certified"]) == (0, 0)

    # Entities leaving: one deactivated, one deleted.
    with services.db.transaction() as s:
        registry.update(s, "ent-b", "Entidad B", "municipal", [], [], None, False, "t")
    assert check(services)["total"] == 62
    with services.db.transaction() as s:
        s.delete(s.get(EntityRow, "ent-00003"))
    assert check(services)["total"] == 61


def test_start_up_fills_a_database_migrated_with_entities(services: Services) -> None:
    """A database that had entities before revision 0022: ensure() rewrites both tables."""
    now = utcnow()
    with services.db.transaction() as s:
        generate.constituency(s, 40, now, "2026.1")
        expected = progress.progress(s, now)
        s.execute(delete(CertStateRow))
        s.execute(delete(CertTrendRow))
    with services.db.transaction() as s:
        assert progress_state.ensure(s.connection()) is True
        assert progress_state.ensure(s.connection()) is False
        assert progress.progress(s, now) == expected


def test_the_daily_snapshot_counts_what_plain_sql_changed(services: Services) -> None:
    """A write behind the ORM (plain SQL) is not followed; the daily snapshot rewrites
    the state from the tables before it counts, so it is counted from then on."""
    from certification import snapshots

    now = utcnow()
    with services.db.transaction() as s:
        generate.constituency(s, 40, now, "2026.1")
    with services.db.transaction() as s:
        s.execute(text("UPDATE certificates SET status = 'revoked' WHERE id = 'VIG-TEST-00000'"))
        assert progress.progress(s, now)["certified"] == 22  # not seen yet
        assert snapshots.take(s, now).certified == 21
        assert progress.progress(s, now)["certified"] == 21
    check(services, now)


def test_a_suspended_certificate_expiring_keeps_when_it_stopped_counting(
    client: TestClient, services: Services
) -> None:
    """The expiry job ending a suspended certificate does not move the end of its span
    to the job's run: the months it was suspended stay uncovered in the trend, and the
    kept figures still see the change (suspended → expired)."""
    from certification import certificates, progress_cache

    h = world(services)
    an = h["analyst"]
    a = fill(client, services, h["a"])
    client.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"])
    review_all(client, an, a["id"])
    assert client.post(f"/api/v1/assessments/{a['id']}/decision", json={}, headers=an).is_success
    cert = client.get("/api/v1/certificates", params={"entity_id": "ent-a"}, headers=an).json()[0]
    url = f"/api/v1/certificates/{cert['id']}"
    assert client.post(f"{url}/suspend", json={"reason": "x"}, headers=an).status_code == 200
    with services.db.transaction() as s:
        row = s.get_one(CertificateRow, cert["id"])
        suspended_at, later = row.updated_at, row.valid_until + timedelta(days=40)
        before = progress_cache.figures(s, later)
    assert before["by_state"]["suspended"] == 1
    assert [t["certified"] for t in before["trend"]] == [0] * len(before["trend"])
    with services.db.transaction() as s:
        assert certificates.expire_due(s, later, "t") == [cert["id"]]
    with services.db.transaction() as s:
        row = s.get_one(CertificateRow, cert["id"])
        assert (row.status, row.updated_at) == ("expired", suspended_at)
        after = progress_cache.figures(s, later)
    assert after["by_state"].get("suspended", 0) == 0
    assert after["by_state"]["expired"] == 1
    assert [t["certified"] for t in after["trend"]] == [0] * len(after["trend"])
    check(services, later)


def test_the_kept_state_is_rewritten_once_per_transaction_and_read_current(
    services: Services, monkeypatch: Any
) -> None:
    """Three flushes that touch entities in one transaction rewrite their kept rows
    once, at commit (a request flushes several times); a reader in the same
    transaction sees its changes all the same; a rolled-back change rewrites nothing."""
    calls: list[set[str]] = []
    real = progress_state.refresh

    def counted(conn: Any, ids: Any) -> None:
        calls.append(set(ids))
        real(conn, ids)

    monkeypatch.setattr(progress_state, "refresh", counted)
    now = utcnow()
    with services.db.transaction() as s:
        for n in range(3):
            Registry.add(s, f"ent-{n}", f"Entidad {n}", "central", [], [], "test")
            s.flush()
        assert calls == []  # noted, not yet rewritten
        assert progress.progress(s, now)["total"] == 3  # read current all the same
        assert calls == [{"ent-0", "ent-1", "ent-2"}]
    assert len(calls) == 1  # nothing left for the commit
    with services.db.transaction() as s:
        Registry.add(s, "ent-3", "Entidad 3", "central", [], [], "test")
        s.flush()
    assert calls[1:] == [{"ent-3"}]  # at commit, once
    try:
        with services.db.transaction() as s:
            Registry.add(s, "ent-4", "Entidad 4", "central", [], [], "test")
            s.flush()
            raise RuntimeError("undone")
    except RuntimeError:
        pass
    assert len(calls) == 2
    with services.db.transaction() as s:
        assert progress.progress(s, now)["total"] == 4
    check(services, now)
