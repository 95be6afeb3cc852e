"""Certification: catalogue, scoring edge cases, the whole workflow, the policy,
every certificate state change, evidence limits, entity isolation, the registry CSV."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from certification import catalogue, certificates, scoring
from certification.catalogue import CatalogueError
from certification.models import CertificateRow
from certification.policy import CertPolicy, OpenIncident
from core import audit
from core.clock import utcnow
from tests.cert_helpers import PDF, controls, fill, review_all, world
from vigia.wiring import Services


@pytest.fixture
def h(services: Services) -> dict[str, dict[str, str]]:
    return world(services)


# -- catalogue and scoring -------------------------------------------------


def test_the_bundled_catalogue_is_loaded_and_mapped() -> None:
    text = (catalogue.resources.files("certification.catalogues") / catalogue.BUNDLED).read_text()
    cat, _ = catalogue.load_text(text)
    assert cat.version == "2026.1" and len(cat.domains) == 10
    assert {c.domain for c in cat.controls} == {d for d, _ in cat.domains}
    assert all(c.iso27001 or c.id.startswith("RIE") for c in cat.controls)
    assert sum(c.mandatory for c in cat.controls) == 17


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("version: [", "not YAML"),
        ("version: '1'\ntitle: t\ndomains: []", "at least one domain"),
        (
            "version: '1'\ntitle: t\ndomains:\n- id: GOB\n  name: G\n  controls:\n"
            "  - {id: GOB-01, title: t, objective: o, applicability: a, guidance: g,"
            " mandatory: true, iso27001: ['5.1']}",
            "not an Annex A",
        ),
        (
            "version: '1'\ntitle: t\ndomains:\n- id: GOB\n  name: G\n  controls:\n"
            "  - {id: GOB-01, title: t, objective: '', applicability: a, guidance: g,"
            " mandatory: true}",
            "objective is required",
        ),
    ],
)
def test_a_bad_catalogue_is_refused_with_its_fault(
    client: TestClient, h: dict[str, dict[str, str]], text: str, reason: str
) -> None:
    r = client.post("/api/v1/catalogues", content=text.encode(), headers=h["admin"])
    assert r.status_code == 422 and reason in r.json()["detail"], r.text
    assert [c["version"] for c in client.get("/api/v1/catalogues", headers=h["a"]).json()] == [
        "2026.1"
    ]


def test_a_new_catalogue_version_becomes_current_and_versions_do_not_change(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    text = (
        "version: '2027.1'\ntitle: Nuevo\ndomains:\n- id: GOB\n  name: Gobierno\n  controls:\n"
        "  - {id: GOB-01, title: t, objective: o, applicability: a, guidance: g,"
        " mandatory: true, iso27001: [A.5.1], cis_v8: ['17.1']}\n"
    )
    assert (
        client.post("/api/v1/catalogues", content=text.encode(), headers=h["admin"]).status_code
        == 201
    )
    listed = client.get("/api/v1/catalogues", headers=h["analyst"]).json()
    assert [(c["version"], c["current"]) for c in listed] == [("2026.1", False), ("2027.1", True)]
    changed = text.replace("title: t,", "title: otro,")
    r = client.post("/api/v1/catalogues", content=changed.encode(), headers=h["admin"])
    assert r.status_code == 422 and "bump it" in r.json()["detail"]
    a = client.post("/api/v1/assessments", json={}, headers=h["a"]).json()
    assert a["catalogue"] == "2027.1" and len(a["controls"]) == 1
    with services.db.transaction(write=False) as s:
        loads = s.execute(
            select(audit.AuditRecord).where(audit.AuditRecord.action == "catalogue.load")
        ).scalars()
        assert [r.object_id for r in loads] == ["2027.1"]  # the shipped one is setup, not a change


def test_scoring_edge_cases() -> None:
    text = (catalogue.resources.files("certification.catalogues") / catalogue.BUNDLED).read_text()
    cat, _ = catalogue.load_text(text)
    today = date(2026, 6, 1)
    fresh, old = (date(2027, 1, 1),), (date(2026, 5, 31),)
    ok = {c.id: scoring.Answer("implemented", None, fresh) for c in cat.controls}
    assert scoring.score(cat, ok, today).overall == 1.0
    # Not applicable leaves a control out; it does not count against the entity.
    na = dict(ok) | {"GOB-03": scoring.Answer("not_applicable")}
    s = scoring.score(cat, na, today)
    assert s.overall == 1.0 and next(d for d in s.domains if d.domain == "GOB").score == 1.0
    # Expired evidence: an implemented claim counts as partial, and a mandatory one is unmet.
    stale = dict(ok) | {"GOB-01": scoring.Answer("implemented", None, old)}
    s = scoring.score(cat, stale, today)
    assert s.unevidenced == ["GOB-01"] and s.mandatory_unmet == ["GOB-01"]
    gob = next(d for d in s.domains if d.domain == "GOB")
    assert gob.score == round((2 * 0.5 + 2 + 1) / 5, 4)  # weights: GOB-01 2, GOB-02 2, GOB-03 1
    # A rejected answer counts nothing; a missing one too.
    rejected = dict(ok) | {"ACC-03": scoring.Answer("implemented", "rejected", fresh)}
    assert scoring.score(cat, rejected, today).overall < 1.0
    partial = dict(ok)
    del partial["RED-02"]
    s = scoring.score(cat, partial, today)
    assert s.answered == len(cat.controls) - 1 and s.progress < 1.0
    # A domain of only not-applicable controls has no score (not zero).
    all_na = dict(ok) | {c: scoring.Answer("not_applicable") for c in ("CON-01", "CON-02")}
    s = scoring.score(cat, all_na, today)
    assert next(d for d in s.domains if d.domain == "CON").score is None


def test_the_policy() -> None:
    p = CertPolicy(min_score=0.8, conditional_min_score=0.6, incident_block_days=7)
    now = utcnow()
    good = scoring.Score(0.9, 29, 29)
    assert p.decide(good, [], now).level == "certified"
    unmet = scoring.Score(0.9, 29, 29, mandatory_unmet=["GOB-01"])
    d = p.decide(unmet, [], now)
    assert d.level == "conditional" and "GOB-01" in d.reasons[0]
    assert p.decide(scoring.Score(0.5, 29, 29), [], now).level is None
    fresh = OpenIncident(7, "P1", now - timedelta(days=2))
    stale = OpenIncident(8, "P2", now - timedelta(days=9))
    low = OpenIncident(9, "P3", now - timedelta(days=90))
    assert p.decide(good, [fresh, low], now).level == "certified"  # within grace / not high
    blocked = p.decide(good, [stale], now)
    assert blocked.level is None and "incidente #8 (P2)" in blocked.reasons[0]


# -- the workflow ----------------------------------------------------------


def test_from_self_assessment_to_a_verified_certificate(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    a = fill(client, services, h["a"], {"GOB-03": "not_applicable"})
    assert a["progress"] == 1.0 and a["score"] == 1.0 and a["status"] == "in_progress"
    aid = a["id"]
    assert (
        client.post(
            f"/api/v1/assessments/{aid}/decision", json={}, headers=h["analyst"]
        ).status_code
        == 409
    )
    sub = client.post(f"/api/v1/assessments/{aid}/submit", headers=h["a"])
    assert sub.status_code == 200 and sub.json()["status"] == "submitted"
    # Submitted: the entity can no longer change it.
    r = client.put(
        f"/api/v1/assessments/{aid}/answers/GOB-01", json={"answer": "partial"}, headers=h["a"]
    )
    assert r.status_code == 409
    review_all(
        client, h["analyst"], aid, reject={"ACC-03": "Falta la evidencia de cuentas separadas."}
    )
    ret = client.post(
        f"/api/v1/assessments/{aid}/return", json={"comment": "Revise ACC-03"}, headers=h["analyst"]
    )
    assert ret.status_code == 200 and ret.json()["status"] == "returned"
    # The entity sees why, answers again (the verdict is cleared), and resubmits.
    mine = client.get(f"/api/v1/assessments/{aid}", headers=h["a"]).json()
    acc = next(c for c in mine["controls"] if c["id"] == "ACC-03")
    assert acc["review"] == "rejected" and "cuentas separadas" in acc["review_comment"]
    client.put(
        f"/api/v1/assessments/{aid}/answers/ACC-03", json={"answer": "implemented"}, headers=h["a"]
    )
    client.post(f"/api/v1/assessments/{aid}/submit", headers=h["a"])
    pending = client.post(f"/api/v1/assessments/{aid}/decision", json={}, headers=h["analyst"])
    assert pending.status_code == 409  # ACC-03 not reviewed again yet
    client.put(
        f"/api/v1/assessments/{aid}/reviews/ACC-03",
        json={"verdict": "accepted"},
        headers=h["analyst"],
    )
    d = client.post(f"/api/v1/assessments/{aid}/decision", json={}, headers=h["analyst"])
    assert d.status_code == 200, d.text
    assert d.json()["decision"] == "certified" and d.json()["status"] == "decided"
    (cert,) = client.get("/api/v1/certificates", headers=h["a"]).json()
    assert cert["level"] == "certified" and cert["status"] == "valid"
    state = client.get("/api/v1/certification/entities/ent-a", headers=h["a"]).json()
    assert state["state"] == "certified"
    # Anyone can verify the certificate by its id, without a token.
    pub = client.get(f"/api/v1/public/certificates/{cert['id']}")
    assert pub.status_code == 200 and pub.json()["in_force"] and pub.json()["entity"] == "Entidad A"
    assert client.get("/api/v1/public/certificates/VIG-NOPE").status_code == 404
    with services.db.transaction(write=False) as s:
        actions = {r.action for r in s.execute(select(audit.AuditRecord)).scalars()}
        assert audit.verify(s).ok
    assert {
        "assessment.open",
        "assessment.answer",
        "assessment.evidence",
        "assessment.submit",
        "assessment.review",
        "assessment.return",
        "assessment.decide",
        "certificate.issue",
    } <= actions


def test_unmet_mandatory_gives_a_conditional_certificate_and_a_low_score_none(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    a = fill(client, services, h["a"], {"GOB-01": "partial"})
    client.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"])
    review_all(client, h["analyst"], a["id"])
    d = client.post(f"/api/v1/assessments/{a['id']}/decision", json={}, headers=h["analyst"]).json()
    assert d["decision"] == "conditional" and "GOB-01" in d["decision_reasons"][0]
    (cert,) = client.get("/api/v1/certificates", headers=h["analyst"]).json()
    days = (date.fromisoformat(cert["valid_until"][:10]) - date.today()).days
    assert 179 <= days <= 180  # the conditional validity
    b = fill(client, services, h["b"], default="not_implemented")
    client.post(f"/api/v1/assessments/{b['id']}/submit", headers=h["b"])
    review_all(client, h["analyst"], b["id"])
    d = client.post(f"/api/v1/assessments/{b['id']}/decision", json={}, headers=h["analyst"]).json()
    assert d["decision"] == "denied" and d["decision_level"] is None
    assert client.get("/api/v1/certificates", headers=h["b"]).json() == []


def test_an_open_high_priority_incident_blocks_issuance_and_observes_certificates(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    from incidents.models import IncidentRow
    from vigia import scheduler

    a = fill(client, services, h["a"])
    client.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"])
    review_all(client, h["analyst"], a["id"])
    d = client.post(f"/api/v1/assessments/{a['id']}/decision", json={}, headers=h["analyst"]).json()
    assert d["decision"] == "certified"
    # A P1 incident naming A, open for ten days.
    inc = client.post(
        "/api/v1/incidents", json={"title": "ransomware", "ncciss": 5}, headers=h["analyst"]
    ).json()
    from incidents.models import IncidentEntityRow

    with services.db.transaction() as s:
        s.add(IncidentEntityRow(incident_id=inc["id"], entity_id="ent-a"))
        s.get(IncidentRow, inc["id"]).created_at = utcnow() - timedelta(days=10)
    scheduler.certification_job(services)
    (cert,) = client.get("/api/v1/certificates", headers=h["a"]).json()
    assert cert["observation"] == f"incidente #{inc['id']} (P1)"
    assert client.get(f"/api/v1/public/certificates/{cert['id']}").json()["under_observation"]
    # A renewal is blocked while it stays open…
    b = fill(client, services, h["a"])
    client.post(f"/api/v1/assessments/{b['id']}/submit", headers=h["a"])
    review_all(client, h["analyst"], b["id"])
    d = client.post(f"/api/v1/assessments/{b['id']}/decision", json={}, headers=h["analyst"]).json()
    assert d["decision"] == "denied" and f"incidente #{inc['id']} (P1)" in d["decision_reasons"][0]
    # …and resolving the incident lifts the observation.
    cur = client.get(f"/api/v1/incidents/{inc['id']}", headers=h["analyst"]).json()
    for to in ("triaged", "in_progress", "resolved"):
        cur = client.post(
            f"/api/v1/incidents/{inc['id']}/transitions",
            json={"version": cur["version"], "to": to},
            headers=h["analyst"],
        ).json()
    scheduler.certification_job(services)
    (cert,) = client.get("/api/v1/certificates", headers=h["a"]).json()
    assert cert["observation"] is None


def test_every_certificate_state_change(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    an = h["analyst"]

    def certify(answer: dict[str, str] | None = None, rest: str = "implemented") -> dict[str, Any]:
        a = fill(client, services, h["a"], answer, rest)
        client.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"])
        review_all(client, an, a["id"])
        client.post(f"/api/v1/assessments/{a['id']}/decision", json={}, headers=an)
        return client.get("/api/v1/certificates", params={"status": "valid"}, headers=an).json()[0]

    def state() -> str:
        return str(
            client.get("/api/v1/certification/entities/ent-a", headers=h["a"]).json()["state"]
        )

    assert state() == "not_started"
    client.post("/api/v1/assessments", json={}, headers=h["a"])
    assert state() == "in_progress"
    from certification.models import AssessmentRow

    with services.db.transaction() as s:  # start over with the helper's own assessment
        for row in s.execute(select(AssessmentRow)).scalars():
            s.delete(row)
    cert = certify()
    url = f"/api/v1/certificates/{cert['id']}"
    assert state() == "certified"
    assert client.post(f"{url}/suspend", json={}, headers=an).status_code == 422  # needs a reason
    assert (
        client.post(f"{url}/suspend", json={"reason": "incidente grave"}, headers=an).json()[
            "status"
        ]
        == "suspended"
    )
    assert state() == "suspended"
    assert client.post(f"{url}/suspend", json={"reason": "x"}, headers=an).status_code == 409
    assert client.post(f"{url}/reinstate", json={}, headers=an).json()["status"] == "valid"
    # Renewal: a new decision ends the old certificate. This assessment answers one
    # control (implemented, evidenced, reviewed) and the rest not applicable: a third of
    # the requests of a full one, the same decision.
    renewed = certify({controls(services)[0].id: "implemented"}, "not_applicable")
    assert renewed["id"] != cert["id"]
    old = client.get("/api/v1/certificates", params={"status": "expired"}, headers=an).json()
    assert [(c["id"], c["reason"]) for c in old] == [(cert["id"], f"renovado por {renewed['id']}")]
    # Reminders at 60, 30 and 7 days, each once; then expiry.
    with services.db.transaction() as s:
        c = s.get(CertificateRow, renewed["id"])
        c.valid_until = utcnow() + timedelta(days=20)
    with services.db.transaction() as s:
        sent = certificates.due_reminders(s, services.cert_policy, utcnow(), "t")
        assert [r.certificate for r in sent] == [renewed["id"]]
        assert certificates.due_reminders(s, services.cert_policy, utcnow(), "t") == []
        assert s.get(CertificateRow, renewed["id"]).reminders == [60, 30]
        later = certificates.due_reminders(
            s, services.cert_policy, utcnow() + timedelta(days=14), "t"
        )
        assert [r.days_left for r in later] == [5]
        assert certificates.expire_due(s, utcnow() + timedelta(days=21), "t") == [renewed["id"]]
    assert state() == "expired"
    assert client.get(f"/api/v1/public/certificates/{renewed['id']}").json()["in_force"] is False
    r = client.post(
        f"/api/v1/certificates/{renewed['id']}/revoke", json={"reason": "fraude"}, headers=an
    )
    assert r.json()["status"] == "revoked" and state() == "revoked"
    assert (
        client.post(
            f"/api/v1/certificates/{renewed['id']}/revoke", json={"reason": "x"}, headers=an
        ).status_code
        == 409
    )


def test_evidence_limits_storage_and_download(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    a = client.post("/api/v1/assessments", json={}, headers=h["a"]).json()
    url = f"/api/v1/assessments/{a['id']}/evidence"
    soon = (date.today() + timedelta(days=30)).isoformat()

    def up(name: str, data: bytes, ctype: str, expires: str = soon, control: str = "GOB-01") -> Any:
        return client.post(
            url,
            data={"control_id": control, "expires_on": expires},
            files={"file": (name, data, ctype)},
            headers=h["a"],
        )

    bad = [
        up("x.exe", b"MZ\x90\x00", "application/x-msdownload"),  # type not accepted
        up("x.pdf", b"MZ\x90\x00", "application/pdf"),  # says PDF, is not
        up("x.pdf", b"", "application/pdf"),  # empty
        up("x.pdf", b"%PDF" + b"0" * (11 * 1024 * 1024), "application/pdf"),  # over 10 MiB: 413
        up("x.pdf", PDF, "application/pdf", expires="2020-01-01"),  # already expired
        up("x.pdf", PDF, "application/pdf", control="NOPE-01"),  # no such control
    ]
    assert [r.status_code for r in bad] == [422, 422, 422, 413, 422, 404]
    first, second = (
        up("a.pdf", PDF, "application/pdf"),
        up("b.pdf", PDF, "application/pdf", control="GOB-02"),
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["sha256"] == second.json()["sha256"]
    stored = list((services.evidence_dir).rglob("*"))
    assert len([p for p in stored if p.is_file()]) == 1  # the same bytes kept once
    got = client.get(f"/api/v1/evidence/{first.json()['id']}", headers=h["a"])
    assert got.status_code == 200 and got.content == PDF
    assert (
        client.get(f"/api/v1/evidence/{first.json()['id']}", headers=h["analyst"]).status_code
        == 200
    )
    assert client.get(f"/api/v1/evidence/{first.json()['id']}", headers=h["b"]).status_code == 404


def test_entity_isolation_on_every_route(
    client: TestClient, services: Services, h: dict[str, dict[str, str]]
) -> None:
    a = fill(client, services, h["a"], evidence_days=0)
    client.post(
        f"/api/v1/assessments/{a['id']}/evidence",
        data={"control_id": "GOB-01", "expires_on": (date.today() + timedelta(days=9)).isoformat()},
        files={"file": ("a.pdf", PDF, "application/pdf")},
        headers=h["a"],
    )
    ev = client.get(f"/api/v1/assessments/{a['id']}", headers=h["a"]).json()["controls"][0][
        "evidence"
    ][0]
    base = f"/api/v1/assessments/{a['id']}"
    b = h["b"]
    attempts = [
        ("GET", base, {}, 404),
        ("PUT", f"{base}/answers/GOB-01", {"json": {"answer": "not_implemented"}}, 404),
        (
            "POST",
            f"{base}/evidence",
            {
                "data": {"control_id": "GOB-01", "expires_on": "2030-01-01"},
                "files": {"file": ("x.pdf", PDF, "application/pdf")},
            },
            404,
        ),
        ("POST", f"{base}/submit", {}, 404),
        ("GET", f"/api/v1/evidence/{ev['id']}", {}, 404),
        ("GET", "/api/v1/certification/entities/ent-a", {}, 404),
        ("GET", "/api/v1/entities/ent-a/contacts", {}, 404),
        ("PUT", "/api/v1/entities/ent-a/contacts", {"json": {"contacts": []}}, 403),
        ("GET", "/api/v1/assessments?entity=ent-a", {}, 403),
        ("GET", "/api/v1/certificates?entity=ent-a", {}, 403),
        ("POST", "/api/v1/assessments", {"json": {"entity_id": "ent-a"}}, 201),  # opens B's own
    ]
    for method, path, kw, code in attempts:
        r = client.request(method, path, headers=b, **kw)
        assert r.status_code == code, (method, path, r.status_code, r.text)
    assert [x["entity_id"] for x in client.get("/api/v1/assessments", headers=b).json()] == [
        "ent-b"
    ]
    # A's assessment is as A left it.
    after = client.get(base, headers=h["a"]).json()
    assert after["status"] == "in_progress" and after["controls"][0]["answer"] == "implemented"
    assert len(after["controls"][0]["evidence"]) == 1


def test_registry_csv_round_trip_with_bad_rows_reported(
    client: TestClient, h: dict[str, dict[str, str]]
) -> None:
    csv_text = (
        "id,name,level,parent,networks,domains,contact_name,contact_email,contact_phone,active\n"
        "gam-x,GAM X,municipal,gad-y,10.9.0.0/16,x.gob.bo,Ana,ana@x.gob.bo,+59170000000,true\n"
        "gad-y,Gobernación Y,departmental,,10.8.0.0/16 10.7.0.0/16,y.gob.bo,,,,true\n"
        "bad id,Mal,central,,,,,,,true\n"
        "ent-z,Z,no-such-level,,,,,,,true\n"
        "ent-w,=HYPERLINK(1),other,,not-a-cidr,,,,,true\n"
        "ent-a,Entidad A renombrada,central,,10.1.0.0/16,,,,,false\n"
    )
    r = client.post("/api/v1/entities/import", content=csv_text.encode(), headers=h["admin"])
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["added"], out["updated"], out["unchanged"]) == (2, 1, 0)
    assert [x.split(":")[0] for x in out["rejected"]] == ["line 4", "line 5", "line 6"]
    exported = client.get("/api/v1/entities.csv", headers=h["auditor"]).text.splitlines()
    rows = {line.split(",")[0]: line for line in exported[1:]}
    assert rows["gam-x"].startswith(
        "gam-x,GAM X,municipal,gad-y,10.9.0.0/16,x.gob.bo,Ana,ana@x.gob.bo,'+59170000000,true"
    )
    assert rows["gad-y"].split(",")[4] == "10.8.0.0/16 10.7.0.0/16"
    assert rows["ent-a"].endswith(",false")
    again = client.post(
        "/api/v1/entities/import", content="\n".join(exported).encode(), headers=h["admin"]
    )
    assert again.json()["unchanged"] == 4 and again.json()["rejected"] == []
    missing = client.post("/api/v1/entities/import", content=b"id,name\n", headers=h["admin"])
    assert missing.status_code == 422 and "level" in missing.json()["detail"]


def test_contacts_by_the_entity_itself_never_echo_the_secret(
    client: TestClient, h: dict[str, dict[str, str]]
) -> None:
    body = {
        "contacts": [{"name": "Oficial", "email": "so@a.gob.bo"}],
        "webhook_url": "https://a.gob.bo/cert",
        "webhook_secret": "0123456789abcdef0123",
    }
    assert (
        client.put("/api/v1/entities/ent-a/contacts", json=body, headers=h["a"]).status_code == 200
    )
    got = client.get("/api/v1/entities/ent-a/contacts", headers=h["analyst"]).json()
    assert got == {
        "contacts": [{"name": "Oficial", "email": "so@a.gob.bo", "phone": ""}],
        "webhook_url": "https://a.gob.bo/cert",
    }
    bad = dict(body, contacts=[{"email": "no-es-correo"}])
    assert (
        client.put("/api/v1/entities/ent-a/contacts", json=bad, headers=h["a"]).status_code == 422
    )


def test_controls_helper_sees_the_current_catalogue(services: Services) -> None:
    assert len(controls(services)) == 29
    with services.db.transaction(write=False) as s, pytest.raises(CatalogueError):
        catalogue.get(s, "1999.1")


def test_the_cli_imports_and_exports_the_registry(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "VIGIA_DATA_DIR": str(tmp_path / "d")}
    env.pop("VIGIA_DATABASE_URL", None)
    src = tmp_path / "entidades.csv"
    src.write_text("id,name,level\nmin-x,Ministerio X,central\nmal,Sin nivel,\n")

    def vigia(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vigia", "entity", *args],
            capture_output=True,
            text=True,
            env=env,
        )

    r = vigia("import", str(src))
    assert r.returncode == 0 and f"{src}:3: " in r.stderr and "1 added" in r.stderr
    out = vigia("export")
    assert out.stdout.splitlines()[1].startswith("min-x,Ministerio X,central,")
    (tmp_path / "malo.csv").write_text("id,nombre\n")
    bad = vigia("import", str(tmp_path / "malo.csv"))
    assert bad.returncode == 2 and "columns" in bad.stderr and "Traceback" not in bad.stderr


def test_reminders_go_out_by_mail(tmp_path: Any, db_url: str) -> None:
    from tests.mailbox import smtp_server

    with smtp_server() as (port, inbox):
        _reminders_by_mail(tmp_path, db_url, port, inbox)


def _reminders_by_mail(tmp_path: Any, db_url: str, port: int, inbox: Any) -> None:
    from certification.registry import Registry
    from core.settings import load_settings
    from vigia import scheduler
    from vigia.wiring import build

    services = build(
        load_settings(
            data_dir=tmp_path / "d", database_url=db_url, smtp_host="127.0.0.1", smtp_port=port
        )
    )
    try:
        client = TestClient(__import__("api.app").app.create_app(services))
        h = world(services)
        with services.db.transaction() as s:
            Registry.set_contacts(s, "ent-a", [{"email": "so@a.gob.bo"}], "", "", "t")
        a = fill(client, services, h["a"])
        client.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"])
        review_all(client, h["analyst"], a["id"])
        client.post(f"/api/v1/assessments/{a['id']}/decision", json={}, headers=h["analyst"])
        with services.db.transaction() as s:
            c = s.execute(select(CertificateRow)).scalar_one()
            c.valid_until = utcnow() + timedelta(days=25, hours=1)
            cid = c.id
        scheduler.certification_job(services)
        scheduler.certification_job(services)  # each mark once
        (mail,) = inbox.messages
        assert (
            mail["To"] == "so@a.gob.bo"
            and mail["Subject"] == f"Certificado {cid}: vence en 25 días"
        )
    finally:
        services.close()
