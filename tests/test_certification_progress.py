"""Progress to the 60 % target, checked on a generated registry of 1 000 entities
whose outcomes are known (certification/generate.py)."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from certification import generate
from certification.registry import LEVELS
from core.clock import utcnow
from core.tokens import Role
from tests.conftest import bearer, make_token
from vigia.wiring import Services

N = 1000


def test_progress_on_a_thousand_entities(client: TestClient, services: Services) -> None:
    now = utcnow()
    with services.db.transaction() as s:
        generate.constituency(s, N, now, "2026.1")
    h = bearer(make_token(services, Role.AUDITOR))
    r = client.get("/api/v1/certification/progress", headers=h)
    assert r.status_code == 200, r.text
    p = r.json()
    expected = [generate.OUTCOMES[i % 20] for i in range(N)]
    certified = sum(1 for o in expected if o in ("certified", "conditional"))
    assert (p["target"], p["certified"], p["total"]) == (0.6, certified, N) == (0.6, 550, 1000)
    assert p["ratio"] == 0.55 and p["needed"] == 50
    assert p["by_state"] == {s: expected.count(s) for s in p["by_state"]}
    assert p["by_state"]["certified"] == 450 and p["by_state"]["not_started"] == 100
    for k, level in enumerate(LEVELS):
        mine = [expected[i] for i in range(N) if i % len(LEVELS) == k]
        n = sum(1 for o in mine if o in ("certified", "conditional"))
        assert p["by_level"][level] == {
            "certified": n,
            "total": len(mine),
            "ratio": round(n / len(mine), 4),
        }
    # The trend: at each month's end, the entities whose (still valid) certificate
    # was issued by then; revoked and suspended ones ended a day ago, so not this month.
    trend = {t["month"]: t["certified"] for t in p["trend"]}
    assert len(trend) == 12 and trend[f"{now:%Y-%m}"] == certified

    def covered_at(t: datetime) -> int:
        count = 0
        ended = now - timedelta(days=1)  # when the revoked and suspended ones ended
        for i, o in enumerate(expected):
            start = generate.issued_at(i, now)
            valid = o in ("certified", "conditional") and start <= t
            cut_short = o in ("revoked", "suspended") and start <= t < ended
            count += valid or cut_short
        return count

    y, m = now.year, now.month
    y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    last_month_end = datetime(now.year, now.month, 1, tzinfo=UTC)
    assert trend[f"{y:04d}-{m:02d}"] == covered_at(last_month_end)
    # The forecast: the monthly gain over six months, extended until 600.
    six_ago = p["trend"][-7]["certified"]
    pace = (certified - six_ago) / 6
    assert p["forecast"]["pace_per_month"] == round(pace, 2) and pace > 0
    months = math.ceil(50 / pace)
    yy, mm = divmod(now.month - 1 + months, 12)
    assert p["forecast"]["month"] == f"{now.year + yy:04d}-{mm + 1:02d}"
    # Closest to certification: the uncertified with the best scores first.
    scores = [c["score"] for c in p["closest"]]
    assert len(scores) == 10 and scores == sorted(scores, reverse=True)
    assert all(c["state"] not in ("certified", "conditional") for c in p["closest"])
    # The CSV has one row per active entity with its state.
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get(
                    "/api/v1/certification/progress", params={"format": "csv"}, headers=h
                ).text
            )
        )
    )
    assert len(rows) == N and sum(r["state"] == "certified" for r in rows) == 450


def test_inactive_entities_leave_the_denominator_and_the_target_can_be_reached(
    client: TestClient, services: Services
) -> None:
    from certification.registry import EntityRow

    now = utcnow()
    with services.db.transaction() as s:
        generate.constituency(s, 40, now, "2026.1")
        for i in range(40):  # the ones never started leave the registry
            if generate.OUTCOMES[i % 20] == "not_started":
                s.get(EntityRow, f"ent-{i:05d}").active = False
    p = client.get(
        "/api/v1/certification/progress", headers=bearer(make_token(services, Role.ANALYST))
    ).json()
    assert (p["certified"], p["total"]) == (22, 36) and p["ratio"] == round(22 / 36, 4)
    assert p["forecast"]["reached"] is True and p["needed"] == 0 and p["forecast"]["month"] is None


def test_daily_snapshots_keep_what_was_reported_that_day(
    client: TestClient, services: Services
) -> None:
    from certification import snapshots
    from certification.registry import EntityRow
    from vigia import scheduler

    now = utcnow()
    day1 = now - timedelta(days=1)
    with services.db.transaction() as s:
        generate.constituency(s, 40, now - timedelta(days=30), "2026.1")
        snapshots.take(s, day1)
    assert (
        scheduler.run_job(
            services, "progress-snapshot", scheduler.progress_job, timedelta(hours=1), True
        )
        == "ok"
    )
    with services.db.transaction() as s:  # the never-started leave the registry today
        for i in range(40):
            if generate.OUTCOMES[i % 20] == "not_started":
                s.get(EntityRow, f"ent-{i:05d}").active = False
    scheduler.progress_job(services)  # the same day again: replaces today's row
    h = bearer(make_token(services, Role.AUDITOR))
    got = client.get("/api/v1/certification/progress/history", headers=h).json()["snapshots"]
    assert [(g["day"], g["certified"], g["total"]) for g in got] == [
        (day1.date().isoformat(), 22, 40),  # yesterday's denominator, kept
        (now.date().isoformat(), 22, 36),
    ]
    assert got[0]["target"] == 0.6 and got[0]["ratio"] == 0.55
    assert sum(v["total"] for v in got[0]["by_level"].values()) == 40
    since = client.get(
        "/api/v1/certification/progress/history",
        params={"since": now.date().isoformat()},
        headers=h,
    ).json()["snapshots"]
    assert [g["day"] for g in since] == [now.date().isoformat()]
    bad = client.get("/api/v1/certification/progress/history", params={"since": "ayer"}, headers=h)
    assert bad.status_code == 422


def test_the_national_view_by_department_expiring_and_the_pace_a_day_needs(
    client: TestClient, services: Services
) -> None:
    """Issue 16: departments (the departmental entity above), certificates ending
    within 60 days, and the monthly pace that reaches 60 % on a chosen day."""
    from datetime import date

    from certification.registry import LEVELS

    now = utcnow()
    with services.db.transaction() as s:
        generate.constituency(s, N, now, "2026.1")
    h = bearer(make_token(services, Role.ANALYST))
    by = date(now.year + 2, 6, 30)
    p = client.get("/api/v1/certification/progress", params={"by": by.isoformat()}, headers=h)
    assert p.status_code == 200, p.text
    p = p.json()
    outcome = [generate.OUTCOMES[i % 20] for i in range(N)]

    def dept(i: int) -> str:
        if i >= 100:
            return f"ent-{(i % 9) * 10 + 1:05d}"
        return f"ent-{i:05d}" if LEVELS[i % len(LEVELS)] == "departmental" else ""

    expected: dict[str, list[int]] = {}
    for i in range(N):
        d = expected.setdefault(dept(i), [0, 0])
        d[0] += outcome[i] in ("certified", "conditional")
        d[1] += 1
    got = {k: [v["certified"], v["total"]] for k, v in p["by_department"].items()}
    assert got == expected and len(got) == 11  # nine departments, ent-00091 alone, national
    assert p["by_department"]["ent-00001"]["name"] == "Entidad 1"
    assert list(p["by_department"])[-1] == ""  # national bodies last
    # Ending within 60 days: issued 331 days ago (i mod 12 = 11), still in force.
    soon = sorted(
        (i for i in range(N) if i % 12 == 11 and outcome[i] in ("certified", "conditional")),
    )
    assert {e["id"] for e in p["expiring"]} == {f"ent-{i:05d}" for i in soon}
    assert all(e["days_left"] == 33 for e in p["expiring"]) and p["expiring_days"] == 60
    # The pace the chosen day needs: the 50 missing over the months until then.
    f = p["forecast"]
    months = (by - now.date()).days / 30.44
    assert f["by"] == by.isoformat() and f["months_to_by"] == round(months, 1)
    assert f["pace_needed"] == round(50 / months, 2)
    proj = p["projection"]
    assert proj[0] == {"month": f"{now:%Y-%m}", "current": 550, "needed": 550}
    assert proj[-1]["needed"] == 600 and len(proj) >= 2
    # A day gone by: no pace; not a date: refused with the reason.
    past = client.get("/api/v1/certification/progress", params={"by": "2020-01-01"}, headers=h)
    assert past.json()["forecast"]["pace_needed"] is None
    bad = client.get("/api/v1/certification/progress", params={"by": "mañana"}, headers=h)
    assert bad.status_code == 422 and "by" in bad.json()["detail"]
    # The console page: the day kept in the form; a bad one refused in Spanish.
    page = client.get("/console/certificacion", params={"fecha": by.isoformat()}, headers=h)
    assert page.status_code == 200 and f'value="{by.isoformat()}"' in page.text
    assert 'id="tabla-departamentos"' in page.text and "Entidad 1" in page.text
    wrong = client.get("/console/certificacion", params={"fecha": "30/06/2028"}, headers=h)
    assert wrong.status_code == 422 and "no es una fecha" in wrong.text


def test_kept_figures_follow_every_change_and_a_certificate_lapsing(
    client: TestClient, services: Services
) -> None:
    """certification.progress_cache answers from what it kept only while the data
    it was counted from is unchanged."""
    from certification import progress_cache
    from certification.models import CertificateRow

    now = utcnow()
    with services.db.transaction() as s:
        generate.constituency(s, 40, now, "2026.1")
        first = s.get(CertificateRow, "VIG-TEST-00000")
        assert first is not None
        first.valid_until = now + timedelta(seconds=30)  # lapses in 30 s
    admin = bearer(make_token(services, Role.ADMIN))
    seen = client.get("/api/v1/certification/progress", headers=admin).json()
    assert seen["certified"] == 22
    r = client.post(
        "/api/v1/certificates/VIG-TEST-00001/revoke", json={"reason": "prueba"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/certification/progress", headers=admin).json()["certified"] == 21
    with services.db.transaction(write=False) as s:
        assert progress_cache.figures(s, now)["certified"] == 21
        later = now + timedelta(seconds=31)
        if later.date() == now.date():  # (the day's change drops them anyway)
            assert progress_cache.figures(s, later)["certified"] == 20
