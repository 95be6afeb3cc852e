"""Issue 18: each entity chooses, per RSIT class, immediate notices (one mail per
incident) or a daily digest (one mail a day gathering them); set through the API
and the CLI, honoured by the external reports' intake, mailed to a real SMTP
server on loopback (tests/mailbox.py)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from api.app import create_app
from core.audit import AuditRecord
from core.clock import utcnow
from core.tokens import Role
from incidents import digest
from tests.conftest import bearer, make_token
from tests.mailbox import Inbox
from tests.reports_helpers import SAMPLES, report_incidents
from tests.test_reports import _deliver, centre, smtp  # noqa: F401 (fixtures)
from vigia import reports
from vigia.cli import app
from vigia.wiring import Services


def test_immediate_gets_a_mail_per_incident_and_digest_one_a_day(
    centre: Services,  # noqa: F811
    smtp: tuple[int, Inbox],  # noqa: F811
) -> None:
    client = TestClient(create_app(centre))
    admin = bearer(make_token(centre, Role.ADMIN))
    salud = bearer(make_token(centre, Role.ENTITY, "min-salud"))
    url = "/api/v1/entities/{}/notification-preferences"
    # Nothing set: immediate for everything.
    got = client.get(url.format("min-salud"), headers=salud).json()
    assert got == {"entity_id": "min-salud", "default": "immediate", "classes": {}}
    # The ministry wants its exposed services once a day, the rest at once.
    r = client.put(
        url.format("min-salud"),
        json={"default": "immediate", "classes": {"vulnerable": "digest"}},
        headers=salud,
    )
    assert r.status_code == 200, r.text
    # Another entity's preferences: not its to see or set.
    assert client.get(url.format("hospital-central"), headers=salud).status_code == 404
    assert (
        client.put(url.format("hospital-central"), json={"default": "digest"}, headers=salud)
    ).status_code == 404
    bad = client.put(
        url.format("min-salud"), json={"default": "digest", "classes": {"nada": "digest"}},
        headers=admin,
    )  # fmt: skip
    assert bad.status_code == 422 and "nada" in bad.json()["detail"]
    bad = client.put(url.format("min-salud"), json={"default": "weekly"}, headers=admin)
    assert bad.status_code == 422
    # The CERT sets the hospital's, through the CLI: everything in the digest.
    env = {"VIGIA_DATA_DIR": str(centre.settings.data_dir)}
    if centre.settings.database_url:
        env["VIGIA_DATABASE_URL"] = centre.settings.database_url
    out = CliRunner().invoke(
        app,
        ["entity", "notifications", "hospital-central", "--default", "digest"],
        env={**os.environ, **env},
    )
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == ["*\tdigest"]
    shown = CliRunner().invoke(
        app, ["entity", "notifications", "min-salud"], env={**os.environ, **env}
    )
    assert shown.output.splitlines() == ["*\timmediate", "vulnerable\tdigest"]
    with centre.db.transaction(write=False) as s:
        changes = s.execute(
            select(AuditRecord).where(AuditRecord.action == "entity.notify_prefs")
        ).scalars()
        seen = [(a.object_id, a.actor) for a in changes]
    assert [o for o, _ in seen] == ["min-salud", "hospital-central"]
    assert seen[1][1] == "cli:local-admin" and seen[0][1].startswith("entity:")

    reports.import_paths(centre, [SAMPLES])
    incidents = report_incidents(centre)
    immediate = {
        inc.id
        for (entity, _, _), inc in incidents.items()
        if entity == "min-educacion" or (entity == "min-salud" and inc.rsit_class != "vulnerable")
    }
    held = {
        entity: {
            i.id for (e, _, _), i in incidents.items() if e == entity and i.id not in immediate
        }
        for entity in ("min-salud", "hospital-central")
    }
    assert held["min-salud"] and held["hospital-central"]
    # Immediate: one mail per incident, now.
    assert _deliver(centre) == (len(immediate), 0)
    mails = smtp[1].messages
    assert sorted(int(m["Subject"].split("#")[1].split()[0]) for m in mails) == sorted(immediate)
    # Digest: nothing yet today; the daily job mails one per entity, every incident
    # in it and each one's hosts attached.
    with centre.db.transaction() as s:
        assert digest.send(s, centre.mailer, centre.contacts, centre.policy).mails == 0
    assert len(mails) == len(immediate)
    with centre.db.transaction() as s:
        sent = digest.send(
            s, centre.mailer, centre.contacts, centre.policy, through=utcnow().date()
        )
    assert sent.mails == 2 and sent.failed == 0
    digests = mails[len(immediate) :]
    assert sorted(m["To"] for m in digests) == [
        "seguridad@salud.example.org",
        "so@hospital.example.org",
    ]
    today = date.today().isoformat()
    for m in digests:
        entity = "min-salud" if "salud" in m["To"] else "hospital-central"
        subject = " ".join(m["Subject"].split())
        assert subject.startswith(f"Resumen diario del CERT nacional del {today}")
        body = m.get_body(("plain",)).get_content()
        assert {int(x.split()[0]) for x in body.split("Incidente #")[1:]} == held[entity]
        names = sorted(p.get_filename() for p in m.iter_attachments())
        assert len(names) == len(held[entity]) and all(n.endswith(".csv") for n in names)
    # Sent once: the next run has nothing; the reply clocks started.
    with centre.db.transaction() as s:
        again = digest.send(
            s, centre.mailer, centre.contacts, centre.policy, through=utcnow().date()
        )
        assert again.mails == 0
        from incidents.models import IncidentEntityRow

        ent = s.get(IncidentEntityRow, (min(held["min-salud"]), "min-salud"))
        assert ent is not None and ent.notified_at is not None and ent.reply_due is not None


def test_a_digest_waits_for_a_mail_server_that_is_down(
    centre: Services,  # noqa: F811
    tmp_path: Path,
) -> None:
    from incidents import prefs
    from incidents.notify import Mailer

    with centre.db.transaction() as s:
        prefs.put(s, "min-educacion", "digest", {}, "test")
    reports.import_paths(centre, [SAMPLES])
    dead = Mailer("127.0.0.1", 9, "vigia@cert.example.org")  # nothing listens on 9
    with centre.db.transaction() as s:
        down = digest.send(s, dead, centre.contacts, centre.policy, through=utcnow().date())
    assert down.mails == 0 and down.failed == 1
    with centre.db.transaction() as s:  # still held: sent when the server is back
        up = digest.send(s, centre.mailer, centre.contacts, centre.policy, through=utcnow().date())
    assert up.mails == 1


def test_the_entity_sees_its_exposure_trend_beside_its_assessment(
    centre: Services,  # noqa: F811
) -> None:
    """Findings per ISO week and report kind, high or critical apart; the entity's
    own only; its self-assessment page carries the block that shows them."""
    from collections import Counter

    from incidents.reports.models import ReportFindingRow

    reports.import_paths(centre, [SAMPLES], notify=False)
    client = TestClient(create_app(centre))
    salud = bearer(make_token(centre, Role.ENTITY, "min-salud"))
    r = client.get("/api/v1/entities/min-salud/exposure", headers=salud)
    assert r.status_code == 200, r.text
    got = r.json()
    with centre.db.transaction(write=False) as s:
        mine = list(
            s.execute(
                select(ReportFindingRow).where(ReportFindingRow.entity_id == "min-salud")
            ).scalars()
        )
    y, w, _ = mine[0].seen_at.isocalendar()
    week = f"{y:04d}-W{w:02d}"
    assert len(got["weeks"]) == 12 and week in got["weeks"]
    k = got["weeks"].index(week)
    assert {kind: n[k] for kind, n in got["kinds"].items()} == Counter(f.kind for f in mine)
    assert got["high"][k] == sum(f.severity in ("high", "critical") for f in mine) > 0
    assert sum(sum(n) for n in got["kinds"].values()) == len(mine)
    other = client.get("/api/v1/entities/min-educacion/exposure", headers=salud)
    assert other.status_code == 404
    page = client.get("/console/autoevaluacion", headers=salud)
    assert page.status_code == 200
    assert 'id="exposicion"' in page.text and 'data-entidad="min-salud"' in page.text
    assert "Exposición según informes externos" in page.text
