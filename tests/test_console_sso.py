"""Single sign-on as a person does it: headless Chromium, `vigia up` on loopback and
a real OpenID Connect provider on loopback (tests/oidc_provider.py). The button on
the login page, the provider's own form, and the console on the other side."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.centre import Up, free_port
from tests.oidc_provider import PASSWORD, Provider, User

USERS = [
    User("u-ana", "ana", ["cert-analistas"]),
    User("u-olga", "olga", ["oficiales-entidad"], entity="min-demo"),
    User("u-nora", "nora", ["personal"]),
]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright (no browser download)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        yield b
        b.close()


def _watch(page: Any) -> list[str]:
    """Console errors (CSP violations among them) and uncaught script errors."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    return problems


def _through_the_provider(page: Any, base: str, user: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/console/login")
    page.click("#sso")  # "Entrar con Proveedor del Estado"
    page.wait_for_selector("#username")  # the provider's own login form
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#entrar")


def test_analyst_and_entity_officer_log_in_through_the_provider(
    browser: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    idp = Provider(USERS, [f"{base}/console/sso/retorno"]).start()
    settings = {
        "VIGIA_OIDC_ISSUER": idp.issuer,
        "VIGIA_OIDC_CLIENT_ID": "vigia",
        "VIGIA_OIDC_CLIENT_SECRET": idp.secret,
        "VIGIA_OIDC_NAME": "Proveedor del Estado",
        "VIGIA_OIDC_ROLES": json.dumps(
            {"cert-analistas": "analyst", "oficiales-entidad": "entity"}
        ),
        "VIGIA_OIDC_ENTITY_CLAIM": "entidad",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    up = Up(tmp_path / "data", port=port)
    try:
        up.start()
        # Right after start the demo's loading keeps both cores busy: the first page
        # can take tens of seconds on a loaded machine.
        assert httpx.get(f"{base}/console/login", timeout=120).status_code == 200
        page = browser.new_page()
        page.set_default_timeout(90_000)
        problems = _watch(page)
        page.goto(f"{base}/console/login")
        assert page.locator("#sso").inner_text() == "Entrar con Proveedor del Estado"

        _through_the_provider(page, base, "ana")
        page.wait_for_url("**/console/alertas")
        assert page.locator("h1").inner_text() == "Alertas"
        assert page.locator(".who").inner_text() == "Rol: analista"
        assert page.locator("#alertas tbody tr").count() >= 1  # the demo's alerts
        page.click("text=Sensores")  # staff pages open
        assert page.locator("h1").inner_text() == "Sensores"
        page.screenshot(path=str(tmp_path / "sso-analista.png"))
        page.click("text=Cerrar sesión")
        # Vigía's session ends, then the provider's (its end-session endpoint), then back.
        page.wait_for_url(f"{base}/console/login")
        assert page.locator("h1").inner_text() == "Iniciar sesión"
        assert idp.logouts == ["ana"] and not idp.sessions
        page.click("#sso")  # the provider's session is gone: it asks for credentials again
        page.wait_for_selector("#username")

        _through_the_provider(page, base, "olga")
        page.wait_for_url("**/console/alertas")
        assert page.locator(".who").inner_text() == "Rol: entidad · min-demo"
        assert page.locator("text=Autoevaluación").count() == 1  # the entity's own menu
        assert page.locator("text=Sensores").count() == 0
        page.screenshot(path=str(tmp_path / "sso-entidad.png"))

        _through_the_provider(page, base, "nora")  # in no group Vigía maps
        page.wait_for_url("**/console/sso/retorno*")
        refusal = page.locator(".error").inner_text()
        assert "Su cuenta (nora) no pertenece a ningún grupo con acceso a Vigía" in refusal
        again = page.goto(f"{base}/console/alertas")
        assert again is not None and again.status == 401
        assert idp.challenges == ["S256", "S256", "S256"]  # every login with PKCE
        assert not [p for p in problems if "Content Security Policy" in p or "uncaught" in p]
    finally:
        up.stop()
        idp.stop()
