"""Single sign-on with several providers: two real OpenID Connect providers on
loopback (tests/oidc_provider.py), each with its own button, client and claim
mapping; API bearer JWTs checked by the provider their `iss` names, with that
provider's keys only; a provider configured by halves stops the start."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt

from api.app import create_app
from certification.registry import Registry
from core.settings import SettingsError, load_settings
from core.sso_config import OidcProvider
from tests.conftest import bearer
from tests.console import csrf_of
from tests.oidc_provider import PASSWORD, Provider, User
from tests.test_sso_console import audited, jwt_payload
from vigia.wiring import Services, build

BACK = ["http://testserver/console/sso/retorno"]
STATE_USERS = [
    User("u-ana", "ana", ["cert-analistas"]),
    User("u-olga", "olga", ["oficiales-entidad"], entity="ent-a"),
]
# Another institution's provider: its own groups, its own mapping in Vigía.
UNIVERSITY_USERS = [
    User("u-bea", "bea", ["auditoria"]),
    User("u-teo", "teo", ["cert-analistas"]),  # a group only the State's mapping knows
]


@pytest.fixture(scope="module")
def state_idp() -> Iterator[Provider]:
    provider = Provider(STATE_USERS, BACK).start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def university_idp() -> Iterator[Provider]:
    provider = Provider(UNIVERSITY_USERS, BACK).start()
    yield provider
    provider.stop()


def _entry(idp: Provider, name: str, roles: dict[str, str], **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "issuer": idp.issuer,
        "client_id": "vigia",
        "client_secret": idp.secret,
        "roles": roles,
        **more,
    }


def _providers(state: Provider, university: Provider) -> list[dict[str, Any]]:
    return [
        _entry(
            state,
            "Proveedor del Estado",
            {"cert-analistas": "analyst", "oficiales-entidad": "entity"},
            entity_claim="entidad",
        ),
        _entry(university, "Universidad Pública", {"auditoria": "auditor"}),
    ]


@pytest.fixture
def centre(state_idp: Provider, university_idp: Provider, tmp_path: Path) -> Iterator[Services]:
    settings = {"data_dir": tmp_path / "data", "database_url": ""}
    settings["oidc_providers"] = _providers(state_idp, university_idp)
    s = build(load_settings(**settings))
    with s.db.transaction() as session:
        Registry.add(session, "ent-a", "Entidad A", "central", [], [], "test")
    yield s
    s.close()


@pytest.fixture
def console(centre: Services) -> TestClient:
    return TestClient(create_app(centre), base_url="http://testserver")


def _login(console: TestClient, button: str, user: str) -> httpx.Response:
    """Follow one provider's button on the login page, log in there, come back."""
    page = console.get("/console/login")
    assert f'href="{html.escape(button)}"' in page.text
    start = console.get(button, follow_redirects=False)
    assert start.status_code == 302
    with httpx.Client() as at_idp:
        form = at_idp.get(start.headers["location"])
        action = re.search(r'action="([^"]+)"', form.text)
        assert action is not None
        idp_base = start.headers["location"].split("/authorize")[0]
        back = at_idp.post(
            idp_base + action.group(1).replace("&amp;", "&"),
            data={"username": user, "password": PASSWORD},
        )
    assert back.status_code == 302
    url = urlsplit(back.headers["location"])
    return console.get(f"{url.path}?{url.query}", follow_redirects=False)


def test_the_login_page_offers_each_provider_and_each_maps_by_its_own_configuration(
    state_idp: Provider, university_idp: Provider, centre: Services, console: TestClient
) -> None:
    page = console.get("/console/login").text
    assert re.search(r'href="/console/sso/entrar">Entrar con Proveedor del Estado<', page)
    assert re.search(r'href="/console/sso/entrar\?p=1">Entrar con Universidad Pública<', page)
    start = console.get("/console/sso/entrar?p=1", follow_redirects=False)
    assert start.headers["location"].startswith(f"{university_idp.issuer}/authorize?")

    assert _login(console, "/console/sso/entrar?p=1", "bea").status_code == 200
    assert "Rol: auditoría" in console.get("/console/alertas").text
    # teo's group is mapped at the State's provider, not at the university's.
    refused = _login(console, "/console/sso/entrar?p=1", "teo")
    assert refused.status_code == 403 and "Su cuenta (teo) no pertenece" in refused.text
    [record] = audited(centre, "console.login_refused")
    assert record.detail["reason"] == (
        "no Vigía role for teo: none of its 'groups' values is mapped in "
        "VIGIA_OIDC_PROVIDERS[1].roles"
    )
    assert _login(console, "/console/sso/entrar", "olga").status_code == 200
    assert "Rol: entidad · ent-a" in console.get("/console/alertas").text
    logins = audited(centre, "console.login")
    assert [(r.actor, r.detail["issuer"]) for r in logins] == [
        ("auditor:sso:bea", university_idp.issuer),
        ("entity:sso:olga", state_idp.issuer),
    ]
    # The logout goes to the provider the session came from.
    alerts = console.get("/console/alertas")
    out = console.post("/console/logout", data={"csrf": csrf_of(alerts.text)})
    assert out.status_code == 200 and "Proveedor del Estado" in out.text
    link = re.search(r'id="continuar" href="([^"]+)"', out.text)
    assert link is not None and html.unescape(link.group(1)).startswith(
        f"{state_idp.issuer}/logout?"
    )
    missing = console.get("/console/sso/entrar?p=2", follow_redirects=False)
    assert missing.status_code == 404 and "no está configurado" in missing.text


def test_api_jwts_are_checked_by_their_own_issuers_keys_and_no_other(
    state_idp: Provider, university_idp: Provider, console: TestClient, tmp_path: Path
) -> None:
    ana = str(state_idp.token_for("ana")["access_token"])
    bea = str(university_idp.token_for("bea")["access_token"])
    assert console.get("/api/v1/entities", headers=bearer(ana)).status_code == 200
    assert console.get("/api/v1/entities", headers=bearer(bea)).status_code == 200
    teo = str(university_idp.token_for("teo")["access_token"])
    r = console.get("/api/v1/entities", headers=bearer(teo))
    assert r.status_code == 403 and "VIGIA_OIDC_PROVIDERS[1].roles" in r.json()["detail"]

    # The State's claims (an analyst), signed with the university's key: refused.
    forged_claims = {**jwt_payload(ana), "exp": int(time.time()) + 300}
    same_kid = jwt.encode(
        {"alg": "RS256", "kid": "k1"}, forged_claims, university_idp.signing_keys()
    )
    r = console.get("/api/v1/entities", headers=bearer(same_kid))
    assert r.status_code == 401 and r.json()["detail"] == "bearer JWT refused: bad signature"
    kid = university_idp.rotate()  # a key id only the university publishes
    other_kid = jwt.encode(
        {"alg": "RS256", "kid": kid}, forged_claims, university_idp.signing_keys()
    )
    r = console.get("/api/v1/entities", headers=bearer(other_kid))
    assert r.status_code == 401
    assert r.json()["detail"] == (
        "bearer JWT refused: signed with a key the provider does not publish"
    )

    # An issuer not configured is never asked for its keys.
    stranger = Provider(STATE_USERS, BACK).start()
    try:
        token = str(stranger.token_for("ana")["access_token"])
        before = stranger.published
        r = console.get("/api/v1/entities", headers=bearer(token))
        assert r.status_code == 401
        assert r.json()["detail"] == "bearer JWT refused: not from a configured issuer"
        assert stranger.published == before
    finally:
        stranger.stop()


def test_providers_from_the_environment_or_toml_and_the_old_settings_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIGIA_CONFIG", raising=False)
    listed = [
        {"name": "Proveedor del Estado", "issuer": "https://id.example.gob.bo", "client_id": "v",
         "roles": {"cert-analistas": "analyst"}},
        {"name": "Universidad Pública", "issuer": "https://sso.example.edu.bo", "client_id": "w",
         "roles": {"auditoria": "auditor"}, "role_claim": "realm_access.roles"},
    ]  # fmt: skip
    monkeypatch.setenv("VIGIA_OIDC_PROVIDERS", json.dumps(listed))
    got = load_settings(data_dir=tmp_path).sso_providers()
    assert [(p.name, p.issuer, where) for p, where in got] == [
        ("Proveedor del Estado", "https://id.example.gob.bo", "VIGIA_OIDC_PROVIDERS[0].roles"),
        ("Universidad Pública", "https://sso.example.edu.bo", "VIGIA_OIDC_PROVIDERS[1].roles"),
    ]
    assert got[1][0].role_claim == "realm_access.roles"
    monkeypatch.delenv("VIGIA_OIDC_PROVIDERS")
    cfg = tmp_path / "vigia.toml"
    cfg.write_text(
        "[vigia]\n\n[[vigia.oidc_providers]]\n"
        'name = "Proveedor del Estado"\nissuer = "https://id.example.gob.bo"\n'
        'client_id = "v"\nroles = { cert-analistas = "analyst" }\n'
    )
    monkeypatch.setenv("VIGIA_CONFIG", str(cfg))
    [(one, _)] = load_settings(data_dir=tmp_path).sso_providers()
    assert one.name == "Proveedor del Estado" and one.roles == {"cert-analistas": "analyst"}
    monkeypatch.delenv("VIGIA_CONFIG")
    old = load_settings(
        data_dir=tmp_path,
        oidc_issuer="https://id.example.gob.bo/",
        oidc_client_id="vigia",
        oidc_name="Proveedor del Estado",
        oidc_roles={"cert-analistas": "analyst"},
    )
    assert old.sso_providers() == [
        (
            OidcProvider(
                name="Proveedor del Estado",
                issuer="https://id.example.gob.bo/",
                client_id="vigia",
                roles={"cert-analistas": "analyst"},
            ),
            "VIGIA_OIDC_ROLES",
        )
    ]
    assert load_settings(data_dir=tmp_path).sso_providers() == []


GOOD = {"name": "Proveedor del Estado", "issuer": "https://id.example.gob.bo",
        "client_id": "vigia", "roles": {"cert-analistas": "analyst"}}  # fmt: skip


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"name": "Universidad"}, r"VIGIA_OIDC_PROVIDERS\[1\] \(Universidad\): needs issuer, "
         "client_id, roles$"),
        ({**GOOD, "name": "U", "issuer": "http://sso.example.edu.bo"},
         r"\[1\] \(U\): issuer must be https:// \(http:// on loopback only\)$"),
        ({**GOOD, "name": "U"}, r"\[1\] \(U\): issuer https://id.example.gob.bo is listed twice$"),
        ({**GOOD, "issuer": "https://sso.example.edu.bo"},
         r"\[1\] \(Proveedor del Estado\): another provider has the name"),
        ({**GOOD, "name": "U", "issuer": "https://u.example", "roles": {"x": "sensor"}},
         r"'x' → 'sensor': a role among admin, analyst, auditor, entity$"),
        ({**GOOD, "name": "U", "issuer": "https://u.example", "roles": {"x": "entity"}},
         r"\[1\] \(U\): a group mapped to the entity role needs entity_claim$"),
        ({**GOOD, "name": "U", "issuer": "https://u.example", "client_secret": "changeme"},
         r"\[1\] \(U\): client_secret is a well-known default or too short$"),
        ({**GOOD, "name": "U", "issuer": "https://u.example", "clientid": "x"},
         r"VIGIA_OIDC_PROVIDERS\[1\]\.clientid: Extra inputs are not permitted$"),
    ],
)  # fmt: skip
def test_a_bad_provider_configuration_stops_the_start_with_one_line(
    tmp_path: Path, second: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as err:
        load_settings(data_dir=tmp_path, oidc_providers=[GOOD, second])
    assert "\n" not in str(err.value) and "changeme" not in str(err.value)


def test_both_ways_at_once_or_a_bad_list_stop_the_command_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="single sign-on is set twice"):
        load_settings(data_dir=tmp_path, oidc_providers=[GOOD], oidc_issuer=GOOD["issuer"])
    bad = json.dumps([GOOD, {"name": "Universidad", "issuer": "https://u.example"}])
    r = subprocess.run(
        [sys.executable, "-m", "vigia", "audit", "verify"],
        capture_output=True,
        text=True,
        env={**os.environ, "VIGIA_OIDC_PROVIDERS": bad, "VIGIA_DATA_DIR": str(tmp_path)},
        timeout=60,
    )
    assert r.returncode == 2
    assert (
        r.stderr.strip() == "vigia: VIGIA_OIDC_PROVIDERS[1] (Universidad): needs client_id, roles"
    )
