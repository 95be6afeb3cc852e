"""Single sign-on in the console, without a browser: the authorisation code flow with
PKCE against the real provider on loopback (tests/oidc_provider.py), Vigía in process."""

from __future__ import annotations

import base64
import contextlib
import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from certification.registry import Registry
from core.audit import AuditRecord
from core.settings import load_settings
from core.tokens import TokenRow
from tests.console import csrf_of
from tests.oidc_provider import PASSWORD, Provider
from tests.test_sso_api import USERS, sso_settings
from vigia.wiring import Services, build


@pytest.fixture(scope="module")
def idp() -> Iterator[Provider]:
    provider = Provider(USERS, ["http://testserver/console/sso/retorno"]).start()
    yield provider
    provider.stop()


@pytest.fixture
def centre(idp: Provider, tmp_path: Path) -> Iterator[Services]:
    idp.forge_nonce = None
    idp.offers_logout = True
    idp.sessions.clear()
    idp.logouts.clear()
    idp.userinfo_only, idp.offers_userinfo, idp.forge_userinfo_sub = set(), True, None
    s = build(load_settings(**sso_settings(idp, tmp_path / "data")))
    with s.db.transaction() as session:
        Registry.add(session, "ent-a", "Entidad A", "central", [], [], "test")
    yield s
    s.close()


@pytest.fixture
def console(centre: Services) -> TestClient:
    return TestClient(create_app(centre), base_url="http://testserver")


def _at_provider(
    console: TestClient, user: str, state: str | None = None, at_idp: httpx.Client | None = None
) -> httpx.Response:
    """Click the button, log in at the provider, come back: Vigía's answer. `at_idp`:
    the browser's side at the provider (its cookies: the provider's own session)."""
    login = console.get("/console/login")
    assert 'href="/console/sso/entrar"' in login.text and "Entrar con OpenID Connect" in login.text
    start = console.get("/console/sso/entrar", follow_redirects=False)
    assert start.status_code == 302
    cookie = start.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    sent = parse_qs(urlsplit(start.headers["location"]).query)
    assert sent["code_challenge_method"] == ["S256"] and sent["nonce"] and sent["state"]
    with contextlib.ExitStack() as stack:
        http = at_idp or stack.enter_context(httpx.Client())
        back = http.get(start.headers["location"])
        if back.status_code != 302:  # no session at the provider: its login form
            action = re.search(r'action="([^"]+)"', back.text)
            assert action is not None
            idp_base = start.headers["location"].split("/authorize")[0]
            back = http.post(
                idp_base + action.group(1).replace("&amp;", "&"),
                data={"username": user, "password": PASSWORD},
            )
    assert back.status_code == 302
    url = urlsplit(back.headers["location"])
    query = url.query if state is None else re.sub(r"state=[^&]+", f"state={state}", url.query)
    return console.get(f"{url.path}?{query}", follow_redirects=False)


def audited(centre: Services, action: str) -> list[AuditRecord]:
    with centre.db.transaction(write=False) as session:
        rows = session.execute(select(AuditRecord).where(AuditRecord.action == action))
        return list(rows.scalars())


def test_the_console_logs_in_through_the_provider_and_opens_a_session(
    centre: Services, console: TestClient
) -> None:
    done = _at_provider(console, "ana")
    assert done.status_code == 200
    assert 'http-equiv="refresh" content="0; url=/console/alertas"' in done.text
    assert "vigia_session" in console.cookies
    page = console.get("/console/alertas")
    assert page.status_code == 200 and "Rol: analista" in page.text
    with centre.db.transaction(write=False) as session:
        row = session.execute(select(TokenRow).where(TokenRow.name == "sso:ana")).scalar_one()
    assert row.role == "analyst" and row.digest.startswith("sso:")
    [login] = audited(centre, "console.login")
    assert login.actor == "analyst:sso:ana" and login.detail["via"] == "oidc"
    # Revoking the identity's row ends its sessions, as for a token.
    with centre.db.transaction() as session:
        assert centre.tokens.revoke(session, row.id, "test")
    assert console.get("/console/alertas").status_code == 401
    # The provider still vouches for ana: a new login gets a fresh row.
    assert _at_provider(console, "ana").status_code == 200
    assert console.get("/console/alertas").status_code == 200


def test_an_entity_officer_lands_on_its_own_entity(centre: Services, console: TestClient) -> None:
    assert _at_provider(console, "olga").status_code == 200
    page = console.get("/console/alertas")
    assert page.status_code == 200 and "ent-a" in page.text
    assert console.get("/console/sensores").status_code == 403  # staff only


def test_a_user_with_no_mapped_role_is_refused_in_spanish(
    centre: Services, console: TestClient
) -> None:
    refused = _at_provider(console, "nora")
    assert refused.status_code == 403
    assert "Su cuenta (nora) no pertenece a ningún grupo con acceso a Vigía" in refused.text
    assert "vigia_session" not in console.cookies
    [record] = audited(centre, "console.login_refused")
    assert record.detail["reason"].startswith("no Vigía role for nora")
    unknown = _at_provider(console, "eva")
    assert unknown.status_code == 403
    assert "La entidad «ent-zz» de su cuenta (eva) no está en el registro" in unknown.text


def test_a_forged_state_or_nonce_opens_nothing(
    idp: Provider, centre: Services, console: TestClient
) -> None:
    forged = _at_provider(console, "ana", state="otro-estado")
    assert forged.status_code == 400 and "venció o no empezó en esta consola" in forged.text
    idp.forge_nonce = "nonce-de-otro-inicio"  # an ID token minted for another login
    replayed = _at_provider(console, "ana")
    assert replayed.status_code == 401 and "no es válida" in replayed.text
    assert "vigia_session" not in console.cookies
    assert audited(centre, "console.login") == []


def test_without_single_sign_on_there_is_no_button_and_no_flow(
    sqlite_services: Services,
) -> None:
    plain = TestClient(create_app(sqlite_services))
    assert "/console/sso/entrar" not in plain.get("/console/login").text
    for path in ("/console/sso/entrar", "/console/sso/retorno?code=x&state=y"):
        off = plain.get(path, follow_redirects=False)
        assert off.status_code == 404 and "no está configurado" in off.text


def _logout(console: TestClient) -> httpx.Response:
    alerts = console.get("/console/alertas")
    assert alerts.status_code == 200
    return console.post(
        "/console/logout", data={"csrf": csrf_of(alerts.text)}, follow_redirects=False
    )


def test_logging_out_ends_the_session_at_the_provider_too(
    idp: Provider, centre: Services, console: TestClient
) -> None:
    with httpx.Client() as at_idp:
        assert _at_provider(console, "ana", at_idp=at_idp).status_code == 200
        asked = idp.asked_credentials
        # While the provider's session lasts, a login there asks for no credentials.
        assert _at_provider(console, "ana", at_idp=at_idp).status_code == 200
        assert idp.asked_credentials == asked
        out = _logout(console)
        # A page of ours moving on to the provider (a form's redirect to another site
        # would be stopped by the console's form-action 'self').
        assert out.status_code == 200 and "Sesión cerrada en Vigía" in out.text
        assert 'http-equiv="refresh"' in out.text
        link = re.search(r'id="continuar" href="([^"]+)"', out.text)
        assert link is not None
        url = html.unescape(link.group(1))
        assert url.startswith(f"{idp.issuer}/logout?")
        sent = parse_qs(urlsplit(url).query)
        assert sent["post_logout_redirect_uri"] == ["http://testserver/console/login"]
        assert sent["client_id"] == ["vigia"] and sent["id_token_hint"][0].startswith("eyJ")
        assert console.get("/console/alertas").status_code == 401  # Vigía's session is over
        back = at_idp.get(url)
        assert back.status_code == 302
        assert back.headers["location"] == "http://testserver/console/login"
        assert idp.logouts == ["ana"] and idp.sessions == {}
        # The provider's session is gone too: the next login asks for credentials.
        assert _at_provider(console, "ana", at_idp=at_idp).status_code == 200
        assert idp.asked_credentials == asked + 1
    [record] = audited(centre, "console.logout")
    assert record.actor == "analyst:sso:ana"
    assert record.detail == {"via": "oidc", "issuer": idp.issuer}
    assert len(audited(centre, "console.login")) == 3


def test_without_an_end_session_endpoint_the_logout_is_vigias_alone(
    idp: Provider, centre: Services, console: TestClient
) -> None:
    idp.offers_logout = False  # its discovery document names no end_session_endpoint
    with httpx.Client() as at_idp:
        assert _at_provider(console, "ana", at_idp=at_idp).status_code == 200
        out = _logout(console)
        assert out.status_code == 303 and out.headers["location"] == "/console/login"
        assert console.get("/console/alertas").status_code == 401
        asked = idp.asked_credentials
        assert _at_provider(console, "ana", at_idp=at_idp).status_code == 200
        assert idp.asked_credentials == asked and idp.logouts == []  # still open there
    assert len(audited(centre, "console.logout")) == 1


def jwt_payload(jwt: str) -> dict[str, object]:
    body = jwt.split(".")[1]
    found = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert isinstance(found, dict)
    return found


def test_groups_given_only_by_userinfo_are_asked_once_at_login_and_mapped(
    idp: Provider, centre: Services, console: TestClient
) -> None:
    idp.userinfo_only = {"groups", "entidad"}  # as many providers do with groups
    tokens = idp.token_for("olga")
    assert "groups" not in jwt_payload(tokens["id_token"]) and "entidad" not in jwt_payload(
        tokens["id_token"]
    )
    calls = idp.userinfo_calls
    assert _at_provider(console, "ana").status_code == 200
    assert idp.userinfo_calls == calls + 1  # once, at the login
    assert "Rol: analista" in console.get("/console/alertas").text
    assert "Rol: analista" in console.get("/console/sensores").text
    assert idp.userinfo_calls == calls + 1  # not again for the pages
    assert _at_provider(console, "olga").status_code == 200
    assert "Rol: entidad · ent-a" in console.get("/console/alertas").text
    assert idp.userinfo_calls == calls + 2
    refused = _at_provider(console, "nora")  # userinfo's groups map to nothing either
    assert refused.status_code == 403 and "Su cuenta (nora) no pertenece" in refused.text
    logins = audited(centre, "console.login")
    assert [(r.actor, r.detail["claims_from"]) for r in logins] == [
        ("analyst:sso:ana", "userinfo"),
        ("entity:sso:olga", "userinfo"),
    ]
    assert logins[1].detail["entity"] == "ent-a"


def test_an_id_token_with_the_groups_needs_no_userinfo_call(
    idp: Provider, centre: Services, console: TestClient
) -> None:
    calls = idp.userinfo_calls
    assert _at_provider(console, "ana").status_code == 200
    assert idp.userinfo_calls == calls
    [login] = audited(centre, "console.login")
    assert "claims_from" not in login.detail


def test_without_userinfo_an_id_token_lacking_groups_maps_to_no_role(
    idp: Provider, centre: Services, console: TestClient
) -> None:
    """The control: the groups above came from the userinfo endpoint."""
    idp.userinfo_only, idp.offers_userinfo = {"groups"}, False
    refused = _at_provider(console, "ana")
    assert refused.status_code == 403 and "Su cuenta (ana) no pertenece" in refused.text
    [record] = audited(centre, "console.login_refused")
    assert record.detail["reason"].startswith("no Vigía role for ana")


def test_a_userinfo_answer_about_another_subject_is_not_used(
    idp: Provider, centre: Services, console: TestClient
) -> None:
    idp.userinfo_only, idp.forge_userinfo_sub = {"groups"}, "u-jefa"
    refused = _at_provider(console, "nora")
    assert refused.status_code == 401 and "vigia_session" not in console.cookies
    [record] = audited(centre, "console.login_refused")
    assert record.detail["reason"] == "the userinfo answer is about another subject"


def test_a_provider_that_does_not_answer_at_logout_is_said(tmp_path: Path) -> None:
    """Vigía's session ends all the same; the person reads that the provider's may not."""
    own = Provider(USERS, ["http://testserver/console/sso/retorno"]).start()
    s = build(load_settings(**sso_settings(own, tmp_path / "data", oidc_jwks_max_age_s=1)))
    try:
        console = TestClient(create_app(s), base_url="http://testserver")
        assert _at_provider(console, "ana").status_code == 200
        own.stop()
        time.sleep(1.2)  # the discovery document held from the login ages out
        out = _logout(console)
        assert out.status_code == 200 and "Iniciar sesión" in out.text
        assert "no responde: su sesión allí puede seguir abierta" in out.text
        assert console.get("/console/alertas").status_code == 401
        assert len(audited(s, "console.logout")) == 1
    finally:
        s.close()
