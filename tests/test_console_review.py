"""The CERT's review in the console (forms on /console/revisiones/{id}): verdicts,
giving an assessment back, deciding; a refused form shows the page again with the
reason and its status, and a form with a field it does not know is refused."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from tests.cert_helpers import fill, world
from tests.console import console_login, csrf_of
from vigia.wiring import Services


def test_verdicts_return_and_decision_through_the_console_forms(
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    api = TestClient(create_app(services))
    h = world(services)
    a = fill(api, services, h["a"])
    assert api.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"]).status_code == 200
    console = TestClient(create_app(services))
    console_login(console, h["analyst"]["Authorization"].removeprefix("Bearer "))
    url = f"/console/revisiones/{a['id']}"
    csrf = csrf_of(console.get(url).text)
    # A rejection without a comment is refused: the page again, with the reason.
    first = a["controls"][0]["id"]
    r = console.post(f"{url}/veredictos", data={"csrf": csrf, f"verdict_{first}": "rejected"})
    assert r.status_code == 422 and 'class="error"' in r.text and 'id="estado-eval"' in r.text
    assert api.get(f"/api/v1/assessments/{a['id']}", headers=h["a"]).json()["status"] == "submitted"
    # Every control accepted: saved, back to the page (303).
    verdicts = {f"verdict_{c['id']}": "accepted" for c in a["controls"]}
    r = console.post(f"{url}/veredictos", data={"csrf": csrf, **verdicts}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == url
    got = api.get(f"/api/v1/assessments/{a['id']}", headers=h["analyst"]).json()
    assert got["status"] == "in_review"
    assert {c["review"] for c in got["controls"]} == {"accepted"}
    # Given back to the entity with a comment; submitted again, reviewed, decided.
    r = console.post(
        f"{url}/devolver", data={"csrf": csrf, "comment": "falta el acta"}, follow_redirects=False
    )
    assert r.status_code == 303
    assert api.get(f"/api/v1/assessments/{a['id']}", headers=h["a"]).json()["status"] == "returned"
    assert api.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"]).status_code == 200
    # Submitted again: deciding before reviewing is refused (409), with the page.
    r = console.post(f"{url}/decidir", data={"csrf": csrf})
    assert r.status_code == 409 and "revísela primero" in r.text
    console.post(f"{url}/veredictos", data={"csrf": csrf, **verdicts})
    r = console.post(f"{url}/decidir", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    decided = api.get(f"/api/v1/assessments/{a['id']}", headers=h["analyst"]).json()
    assert decided["status"] == "decided" and decided["decision"]
    # Without the CSRF token: refused before anything runs.
    assert console.post(f"{url}/decidir", data={}).status_code == 403


def test_a_console_form_with_an_unknown_field_is_refused(sqlite_services: Services) -> None:
    services = sqlite_services
    api = TestClient(create_app(services))
    h = world(services)
    r = api.post("/api/v1/incidents", json={"title": "Prueba"}, headers=h["analyst"])
    assert r.status_code == 201
    inc = r.json()["id"]
    console = TestClient(create_app(services))
    console_login(console, h["analyst"]["Authorization"].removeprefix("Bearer "))
    csrf = csrf_of(console.get(f"/console/incidentes/{inc}").text)
    ok = console.post(
        f"/console/incidentes/{inc}/nota",
        data={"csrf": csrf, "body": "primera nota"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    typo = console.post(
        f"/console/incidentes/{inc}/nota", data={"csrf": csrf, "body": "x", "tlpp": "red"}
    )
    assert typo.status_code == 422 and "tlpp" in typo.text
