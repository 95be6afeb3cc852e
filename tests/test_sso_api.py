"""Single sign-on for the API: bearer JWTs from a real OpenID Connect provider on
loopback (tests/oidc_provider.py), checked against its JWKS; local tokens unchanged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt

from api.app import create_app
from certification.registry import Registry
from core.settings import SettingsError, load_settings
from core.tokens import Role
from tests.conftest import bearer, make_token
from tests.oidc_provider import Provider, User
from vigia.wiring import Services, build

ROLES = {"cert-analistas": "analyst", "cert-jefatura": "admin", "oficiales-entidad": "entity"}
USERS = [
    User("u-ana", "ana", ["cert-analistas", "personal"]),
    User("u-olga", "olga", ["oficiales-entidad"], entity="ent-a"),
    User("u-nora", "nora", ["personal"]),  # no group Vigía maps
    User("u-eva", "eva", ["oficiales-entidad"], entity="ent-zz"),  # not in the registry
    User("u-jefa", "jefa", ["oficiales-entidad", "cert-jefatura"], entity="ent-a"),
]


@pytest.fixture(scope="module")
def idp() -> Iterator[Provider]:
    provider = Provider(USERS, ["http://testserver/console/sso/retorno"]).start()
    yield provider
    provider.stop()


def sso_settings(idp: Provider, data: Path, **more: Any) -> dict[str, Any]:
    return {
        "data_dir": data,
        "database_url": "",
        "oidc_issuer": idp.issuer,
        "oidc_client_id": "vigia",
        "oidc_client_secret": idp.secret,
        "oidc_roles": ROLES,
        "oidc_entity_claim": "entidad",
        **more,
    }


@pytest.fixture
def centre(idp: Provider, tmp_path: Path) -> Iterator[Services]:
    idp.lifetime_s = 600
    s = build(load_settings(**sso_settings(idp, tmp_path / "data")))
    with s.db.transaction() as session:
        for e in ("ent-a", "ent-b"):
            Registry.add(session, e, f"Entidad {e}", "central", [], [], "test")
    yield s
    s.close()


@pytest.fixture
def api(centre: Services) -> TestClient:
    return TestClient(create_app(centre))


def _jwt(idp: Provider, user: str, client_id: str = "vigia") -> str:
    return str(idp.token_for(user, client_id)["access_token"])


def test_a_provider_token_works_as_analyst_and_as_entity_officer(
    idp: Provider, centre: Services, api: TestClient
) -> None:
    analyst = api.get("/api/v1/entities", headers=bearer(_jwt(idp, "ana")))
    assert analyst.status_code == 200
    assert {e["id"] for e in analyst.json()} == {"ent-a", "ent-b"}
    officer = bearer(_jwt(idp, "olga"))
    own = api.get("/api/v1/entities", headers=officer)
    assert own.status_code == 200 and [e["id"] for e in own.json()] == ["ent-a"]
    other = api.get("/api/v1/alerts", params={"entity": "ent-b"}, headers=officer)
    assert other.status_code == 403
    # An entity officer is not staff: staff routes refuse it by role, as for a token.
    assert api.get("/api/v1/sensors", headers=officer).status_code == 403
    # Local tokens keep working beside SSO (sensors, automation); a bad one the old way.
    local = make_token(centre, Role.ANALYST)
    assert api.get("/api/v1/entities", headers=bearer(local)).status_code == 200
    wrong = api.get("/api/v1/entities", headers=bearer("vga_nope"))
    assert wrong.status_code == 401 and wrong.json()["detail"] == "invalid or revoked token"


def test_an_expired_token_is_refused(idp: Provider, api: TestClient) -> None:
    idp.lifetime_s = -120  # issued already expired, past the 30 s leeway
    token = _jwt(idp, "ana")
    idp.lifetime_s = 600
    r = api.get("/api/v1/entities", headers=bearer(token))
    assert r.status_code == 401 and r.json()["detail"] == "bearer JWT refused: expired"
    assert "invalid_token" in r.headers["www-authenticate"]


def test_a_token_for_another_audience_is_refused(idp: Provider, api: TestClient) -> None:
    token = _jwt(idp, "ana", client_id="otra-app")  # same provider, another application
    r = api.get("/api/v1/entities", headers=bearer(token))
    assert r.status_code == 401 and r.json()["detail"] == "bearer JWT refused: wrong aud"


def test_a_tampered_or_unsigned_token_is_refused(idp: Provider, api: TestClient) -> None:
    import base64
    import json

    head, body, sig = _jwt(idp, "nora").split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["groups"] = ["cert-jefatura"]  # nora makes herself an admin
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    r = api.get("/api/v1/entities", headers=bearer(f"{head}.{forged}.{sig}"))
    assert r.status_code == 401 and r.json()["detail"] == "bearer JWT refused: bad signature"
    none = base64.urlsafe_b64encode(b'{"alg":"none","kid":"k1"}').decode().rstrip("=")
    r = api.get("/api/v1/entities", headers=bearer(f"{none}.{forged}."))
    assert r.status_code == 401 and r.json()["detail"].startswith("bearer JWT refused")


def test_a_revoked_key_is_refused_once_the_provider_rotates(idp: Provider, tmp_path: Path) -> None:
    old = _jwt(idp, "ana")
    s = build(load_settings(**sso_settings(idp, tmp_path / "data")))
    try:
        api = TestClient(create_app(s))
        assert api.get("/api/v1/entities", headers=bearer(old)).status_code == 200
        idp.rotate()  # the old key leaves the provider's JWKS
        new = _jwt(idp, "ana")
        # An unknown key id: the keys are fetched again at once, so the new token passes...
        assert api.get("/api/v1/entities", headers=bearer(new)).status_code == 200
        # ... and the old key, no longer published, is gone from the cache with them.
        r = api.get("/api/v1/entities", headers=bearer(old))
        assert r.status_code == 401
        assert r.json()["detail"] == (
            "bearer JWT refused: signed with a key the provider does not publish"
        )
    finally:
        s.close()


def test_a_revoked_key_is_refused_when_the_cached_keys_age_out(
    idp: Provider, tmp_path: Path
) -> None:
    """No token with a new key id needed: the cache lasts VIGIA_OIDC_JWKS_MAX_AGE_S."""
    old = _jwt(idp, "ana")
    s = build(load_settings(**sso_settings(idp, tmp_path / "data", oidc_jwks_max_age_s=1)))
    try:
        api = TestClient(create_app(s))
        assert api.get("/api/v1/entities", headers=bearer(old)).status_code == 200
        idp.rotate()
        time.sleep(1.2)
        r = api.get("/api/v1/entities", headers=bearer(old))
        assert r.status_code == 401 and "does not publish" in r.json()["detail"]
    finally:
        s.close()


def test_a_user_with_no_mapped_role_is_refused_with_the_reason(
    idp: Provider, api: TestClient
) -> None:
    r = api.get("/api/v1/entities", headers=bearer(_jwt(idp, "nora")))
    assert r.status_code == 403
    assert r.json()["detail"] == (
        "no Vigía role for nora: none of its 'groups' values is mapped in VIGIA_OIDC_ROLES"
    )
    r = api.get("/api/v1/entities", headers=bearer(_jwt(idp, "eva")))
    assert r.status_code == 403
    assert r.json()["detail"] == "entity 'ent-zz' of eva is not in the registry"


def test_half_a_configuration_or_a_weak_secret_stops_the_start(tmp_path: Path) -> None:
    base = {"data_dir": tmp_path, "oidc_issuer": "https://idp.example.gob.bo/realms/estado"}
    with pytest.raises(SettingsError, match="needs VIGIA_OIDC_CLIENT_ID, VIGIA_OIDC_ROLES"):
        load_settings(**base)
    full = {**base, "oidc_client_id": "vigia", "oidc_roles": {"cert-analistas": "analyst"}}
    for weak in ("changeme", "x" * 31):
        with pytest.raises(SettingsError, match="VIGIA_OIDC_CLIENT_SECRET") as err:
            load_settings(**full, oidc_client_secret=weak)
        assert weak not in str(err.value)
    with pytest.raises(SettingsError, match="needs VIGIA_OIDC_ENTITY_CLAIM"):
        load_settings(**{**full, "oidc_roles": {"oficiales": "entity"}})
    with pytest.raises(SettingsError, match="a role among"):
        load_settings(**{**full, "oidc_roles": {"sensores": "sensor"}})
    with pytest.raises(SettingsError, match="https://"):
        load_settings(**{**full, "oidc_issuer": "http://idp.example.gob.bo"})
    secret = "s3cr3t-" + "k" * 40
    settings = load_settings(**full, oidc_client_secret=secret)
    assert secret not in repr(settings) and secret not in str(settings.model_dump())


def test_a_write_with_a_provider_token_passes_the_body_guard_and_is_audited(
    idp: Provider, centre: Services, api: TestClient
) -> None:
    """jefa is in two mapped groups: the widest role (admin) wins. Her POST carries a
    body, which the body guard lets through only for a caller it has authenticated."""
    from sqlalchemy import select

    from core.audit import AuditRecord

    body = {"id": "ent-c", "name": "Entidad C", "level": "central"}
    r = api.post("/api/v1/entities", json=body, headers=bearer(_jwt(idp, "jefa")))
    assert r.status_code == 201, r.text
    with centre.db.transaction(write=False) as session:
        record = session.execute(
            select(AuditRecord).where(AuditRecord.object_id == "ent-c")
        ).scalar_one()
    assert record.actor == "admin:sso:jefa" and record.action == "entity.create"
    refused = api.post("/api/v1/entities", json=body, headers=bearer(_jwt(idp, "ana")))
    assert refused.status_code == 403  # an analyst may not


def test_a_provider_that_does_not_answer_is_503_not_a_failed_login(
    idp: Provider, tmp_path: Path
) -> None:
    from tests.centre import free_port

    away = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    s = build(load_settings(**{**sso_settings(idp, tmp_path / "data"), "oidc_issuer": away}))
    try:
        api = TestClient(create_app(s))
        # A token that names the configured (silent) issuer: its keys cannot be had.
        claims = {"iss": away, "aud": "vigia", "sub": "u-ana", "exp": int(time.time()) + 60}
        kid = idp.jwks()["keys"][0]["kid"]  # the provider's key now (others rotate it)
        token = jwt.encode({"alg": "RS256", "kid": kid}, claims, idp.signing_keys())
        r = api.get("/api/v1/entities", headers=bearer(token))
        assert r.status_code == 503 and r.headers["retry-after"] == "30"
        assert r.json()["detail"] == "the identity provider does not answer; retry later"
        page = api.get("/console/sso/entrar", follow_redirects=False)
        assert page.status_code == 503 and "OpenID Connect no responde" in page.text
        local = make_token(s, Role.AUDITOR)  # local tokens do not depend on it
        assert api.get("/api/v1/entities", headers=bearer(local)).status_code == 200
    finally:
        s.close()
