"""The self-assessment and the review as console pages (issue 16): one answer and one
verdict at a time, a refusal shown next to its control with nothing else lost,
evidence per control (several files, removed, replaced, viewed inline), the score
explained, the decision previewed by the policy, refused or granted, and the
entity reading the CERT's comments control by control afterwards."""

from __future__ import annotations

import re
from datetime import date, timedelta

from fastapi.testclient import TestClient

from api.app import create_app
from tests.cert_helpers import PDF, controls, fill, world
from tests.console import console_login, csrf_of
from vigia.wiring import Services

UNTIL = (date.today() + timedelta(days=365)).isoformat()


def _console(services: Services, header: dict[str, str]) -> TestClient:
    c = TestClient(create_app(services))
    console_login(c, header["Authorization"].removeprefix("Bearer "))
    return c


def _block(html: str, control: str) -> str:
    """The part of the page that is one control's."""
    start = html.index(f'id="c-{control}"')
    end = html.find('<article class="control"', start + 1)
    return html[start : end if end > 0 else len(html)]


def test_another_role_reads_in_spanish_that_the_page_is_for_entities(
    sqlite_services: Services,
) -> None:
    h = world(sqlite_services)
    r = _console(sqlite_services, h["analyst"]).get("/console/autoevaluacion")
    assert r.status_code == 403
    assert "Esta página es para las entidades" in r.text
    assert "no access" not in r.text and 'id="token"' not in r.text  # not the login form


def test_answers_one_at_a_time_a_refusal_next_to_its_control_and_nothing_lost(
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    h = world(services)
    c = _console(services, h["a"])
    csrf = csrf_of(c.get("/console/autoevaluacion").text)
    assert c.post("/console/autoevaluacion/iniciar", data={"csrf": csrf}).status_code == 200
    page = c.get("/console/autoevaluacion").text
    aid = int(re.search(r"/console/autoevaluacion/(\d+)/controles/", page).group(1))  # type: ignore[union-attr]
    gob = [x for x in controls(services) if x.domain == "GOB"]
    for x in gob[:-1]:
        r = c.post(
            f"/console/autoevaluacion/{aid}/controles/{x.id}",
            data={"csrf": csrf, "answer": "implemented"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"].endswith(f"#c-{x.id}")
    last = gob[-1].id
    r = c.post(
        f"/console/autoevaluacion/{aid}/controles/{last}",
        data={"csrf": csrf, "answer": "not_applicable", "justification": "  "},
    )
    assert r.status_code == 422
    block = _block(r.text, last)
    assert "«no aplica» necesita una justificación" in block  # next to its control
    assert '<option value="not_applicable" selected>' in block  # what was chosen, kept
    assert r.text.count('class="error"') == 1
    for x in gob[:-1]:  # the others: saved, and shown as saved
        assert '<option value="implemented" selected>' in _block(r.text, x.id)
    # Implemented without evidence is explained as half, in place.
    assert "Cuenta la mitad: sin evidencia vigente" in _block(r.text, gob[0].id)
    assert "Qué falta para certificar con la política vigente" in r.text
    assert "controles sin respuesta" in r.text  # the checklist before submitting


def test_evidence_per_control_several_files_removed_replaced_and_viewed_inline(
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    h = world(services)
    api = TestClient(create_app(services))
    aid = api.post("/api/v1/assessments", json={}, headers=h["a"]).json()["id"]
    c = _console(services, h["a"])
    csrf = csrf_of(c.get("/console/autoevaluacion").text)
    files = [
        ("file", ("acta.pdf", PDF, "application/pdf")),
        ("file", ("politica.txt", "política aprobada".encode(), "text/plain")),
    ]
    form = {"csrf": csrf, "control_id": "GOB-01", "expires_on": UNTIL}
    r = c.post(f"/console/autoevaluacion/{aid}/evidencia", data=form, files=files)
    assert r.status_code == 200
    block = _block(r.text, "GOB-01")
    assert "acta.pdf" in block and "politica.txt" in block and UNTIL in block
    ids = [int(i) for i in re.findall(r'data-evidence="(\d+)"', block)]
    assert len(ids) == 2
    view = c.get(f"/console/evidencia/{ids[1]}")
    assert view.headers["content-disposition"].startswith("inline")
    assert view.text == "política aprobada"
    r = c.post(
        f"/console/autoevaluacion/{aid}/evidencia/{ids[0]}/quitar",
        data={"csrf": csrf, "control_id": "GOB-01"},
    )
    block = _block(r.text, "GOB-01")
    assert "acta.pdf" not in block and "politica.txt" in block
    new = {"csrf": csrf, "control_id": "GOB-01", "expires_on": UNTIL, "replaces": str(ids[1])}
    r = c.post(
        f"/console/autoevaluacion/{aid}/evidencia",
        data=new,
        files=[("file", ("acta-firmada.pdf", PDF, "application/pdf"))],
    )
    block = _block(r.text, "GOB-01")
    assert "acta-firmada.pdf" in block and "politica.txt" not in block
    # Another entity's evidence is not there for it.
    other = _console(services, h["b"])
    assert other.get(f"/console/evidencia/{ids[1]}").status_code == 404


def test_review_one_verdict_at_a_time_preview_refuse_grant_and_the_entity_reads(
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    h = world(services)
    api = TestClient(create_app(services))
    a = fill(api, services, h["a"])
    assert api.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"]).status_code == 200
    c = _console(services, h["analyst"])
    url = f"/console/revisiones/{a['id']}"
    csrf = csrf_of(c.get(url).text)
    ids = [x["id"] for x in a["controls"]]
    for cid in ids[1:]:
        r = c.post(f"{url}/controles/{cid}", data={"csrf": csrf, "verdict": "accepted"})
        assert r.status_code == 200, cid
    # A rejection without a comment: the reason next to it, the other verdicts kept.
    r = c.post(f"{url}/controles/{ids[0]}", data={"csrf": csrf, "verdict": "rejected"})
    assert r.status_code == 422
    assert "un rechazo necesita un comentario para la entidad" in _block(r.text, ids[0])
    assert r.text.count('class="error"') == 1
    assert '<option value="rejected" selected>' in _block(r.text, ids[0])
    assert '<option value="accepted" selected>' in _block(r.text, ids[1])
    r = c.post(
        f"{url}/controles/{ids[0]}",
        data={"csrf": csrf, "verdict": "rejected", "comment": "El acta no está firmada."},
    )
    assert r.status_code == 200
    preview = c.get(f"{url}/decision").text
    assert "Certificación condicional" in preview and ids[0] in preview
    assert "El acta no está firmada." in preview
    refused = c.post(f"{url}/denegar", data={"csrf": csrf, "reason": ""})
    assert refused.status_code == 422 and "motivo" in refused.text
    r = c.post(f"{url}/decidir", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    done = c.get(url).text
    assert "Certificación condicional" in done and ".pdf" in done and ".xlsx" in done
    entity = _console(services, h["a"]).get("/console/autoevaluacion").text
    row = entity[entity.index(f'data-control="{ids[0]}"') :]
    row = row[: row.index("</tr>")]
    assert "Rechazado" in row and "El acta no está firmada." in row
    assert "corrija y responda de nuevo" in row


def test_the_preview_names_an_open_p1_incident_and_the_reviewer_refuses_with_a_reason(
    sqlite_services: Services,
) -> None:
    from core.clock import utcnow
    from incidents.models import IncidentEntityRow, IncidentRow
    from tests.cert_helpers import review_all

    services = sqlite_services
    h = world(services)
    api = TestClient(create_app(services))
    a = fill(api, services, h["a"])
    assert api.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"]).status_code == 200
    review_all(api, h["analyst"], a["id"])
    inc = api.post(
        "/api/v1/incidents", json={"title": "ransomware", "ncciss": 5}, headers=h["analyst"]
    ).json()
    with services.db.transaction() as s:  # a P1 naming A, open for ten days
        s.add(IncidentEntityRow(incident_id=inc["id"], entity_id="ent-a"))
        row = s.get(IncidentRow, inc["id"])
        assert row is not None
        row.created_at = utcnow() - timedelta(days=10)
    c = _console(services, h["analyst"])
    url = f"/console/revisiones/{a['id']}"
    preview = c.get(f"{url}/decision").text
    assert re.search(r'id="resultado">No certificada<', preview)
    assert f"el incidente #{inc['id']} (P1) sigue abierto" in preview
    csrf = csrf_of(preview)
    r = c.post(
        f"{url}/denegar",
        data={"csrf": csrf, "reason": "Resuelvan el incidente de ransomware primero."},
        follow_redirects=False,
    )
    assert r.status_code == 303
    got = api.get(f"/api/v1/assessments/{a['id']}", headers=h["a"]).json()
    assert got["decision"] == "denied" and got["status"] == "decided"
    entity = _console(services, h["a"]).get("/console/autoevaluacion").text
    assert "No certificada" in entity and "Resuelvan el incidente de ransomware" in entity
    assert 'id="iniciar"' in entity  # the next round can begin
