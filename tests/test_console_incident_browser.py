"""The incident page as an analyst uses it (issue 15): headless Chromium (Debian's,
through Playwright) against `vigia up` on loopback, as tests/test_console_browser.py.

Login from a deep link lands on the incident; assign it, read its SLA due times,
a stale edit keeps what was typed, close it with a resolution after the
confirmation; the page fits 390 px; no message id or English in the Spanish page;
axe-core (tests/a11y.py) finds no serious or critical violation on it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.centre import Up
from tests.test_console_browser import (  # noqa: F401 (browser is a fixture)
    _csp_clean,
    _watch,
    browser,
)
from tests.test_i18n import untranslated

# What the services said in English before the console translated them.
ENGLISH = ("closing needs", "changed since version", "no incident", "Rol: analyst", "C2 Server")


def _spanish_only(page: Any) -> None:
    text = page.locator("body").inner_text()
    assert untranslated(text, "es") == [], untranslated(text, "es")
    assert not [e for e in ENGLISH if e in text], text


def _deep_login(page: Any, url: str, token: str) -> None:
    """Open a deep link without a session: the login form, then the page asked for."""
    page.context.clear_cookies()
    resp = page.goto(url)
    assert resp is not None and resp.status == 401
    assert page.locator("h1").inner_text() == "Iniciar sesión"
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(url)


def _axe(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations (tests/a11y.py, axe-core vendored for
    the tests by the alert-queue work; skipped where it is not there)."""
    a11y = pytest.importorskip("tests.a11y")
    found: list[dict[str, Any]] = a11y.violations(page)
    return found


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """One `vigia up` with the national demo for both tests (a start is seconds of
    CPU): the first closes incident 1, the 390 px one opens incident 2's forms."""
    with Up(tmp_path_factory.mktemp("incidents") / "data") as centre:
        yield centre


def test_assign_see_the_sla_keep_a_stale_edit_and_close_after_confirming(
    browser: Any,  # noqa: F811
    up: Up,
    tmp_path: Path,
) -> None:
    admin, base = up.admin, up.url
    context = browser.new_context()
    page = context.new_page()
    problems = _watch(page)
    url = f"{base}/console/incidentes/1"
    _deep_login(page, url, admin)  # lands on the incident, not on the alert queue
    assert page.locator("h1").inner_text().startswith("#1 — ")
    _spanish_only(page)
    # The SLA due times, each clock with the time left, in words.
    clocks = page.locator("#plazos tbody tr")
    assert clocks.count() >= 3
    assert re.search(r"quedan \d+ (d|h|min)", page.locator("#plazos").inner_text())
    # Assign it to an analyst from the list.
    assert page.locator("#responsable").inner_text() == "Sin asignar"
    owner = page.locator("#asignar select[name=owner] option").nth(1)
    name = owner.inner_text().split(" (")[0]
    page.select_option("#asignar select[name=owner]", owner.get_attribute("value"))
    page.click("#asignar button")
    assert page.locator("#mensaje").inner_text() == "✓ Responsable guardado."
    assert page.locator("#responsable").inner_text() == name
    assert f"Sin asignar → {name}" in page.locator("#cronologia").inner_text()
    # A stale edit: another tab saved first; this one is told so in Spanish and
    # keeps what was typed.
    other = context.new_page()
    other.goto(url)
    page.click("#edicion summary")
    page.fill("#edicion input[name=title]", "Título de la primera pestaña")
    page.click("#edicion button")
    assert page.locator("#mensaje").inner_text() == "✓ Cambios guardados."
    other.click("#edicion summary")
    other.fill("#edicion input[name=title]", "Título escrito en la otra pestaña")
    other.fill("#edicion textarea[name=summary]", "Resumen que no debe perderse")
    other.click("#edicion button")
    stale = other.locator("#error-edit").inner_text()
    assert stale.startswith("Otra persona cambió este incidente mientras usted lo editaba")
    assert other.input_value("#edicion input[name=title]") == "Título escrito en la otra pestaña"
    assert other.input_value("#edicion textarea[name=summary]") == "Resumen que no debe perderse"
    _spanish_only(other)
    other.close()
    page.goto(url)
    # Close it: the confirmation says what happens (no notice to the entities,
    # what MISP gets), then the resolution.
    page.click("#cerrar summary")
    consequences = page.locator("#cerrar-consecuencias").inner_text()
    assert "las entidades no reciben ningún aviso" in consequences
    assert "MISP recibe un avistamiento de falso positivo" in consequences
    page.select_option("#cerrar select[name=resolution]", "false_positive")
    page.fill("#cerrar input[name=comment]", "Tráfico de la red de pruebas")
    page.click("#cerrar-confirmar")
    assert page.locator("#mensaje").inner_text() == "✓ Incidente cerrado."
    assert page.locator("#estado").inner_text() == "Cerrado · Falso positivo"
    for gone in ("#notificar", "#edicion", "#nueva-tarea", "#asignar", "#cerrar"):
        assert page.locator(gone).count() == 0, gone
    assert "no aplica" in page.locator("#plazos").inner_text()  # clocks stopped
    _spanish_only(page)
    page.screenshot(path=str(tmp_path / "incidente-cerrado.png"), full_page=True)
    _csp_clean(problems)
    # Accessibility: the closed incident, then an open one with its forms unfolded.
    assert _axe(page) == []
    page.goto(f"{base}/console/incidentes/2")
    for details in ("#cerrar", "#edicion", "#notificar"):
        page.click(f"{details} summary")
    assert _axe(page) == []


def test_the_incident_page_fits_390_px_and_the_header_stays_short(
    browser: Any,  # noqa: F811
    up: Up,
    tmp_path: Path,
) -> None:
    admin = up.admin
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    problems = _watch(page)
    url = f"{up.url}/console/incidentes/2"  # open whichever test ran first
    _deep_login(page, url, admin)
    for details in ("#cerrar", "#edicion", "#notificar"):  # opened: the widest state
        page.click(f"{details} summary")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # was 511 px
    header = page.evaluate("document.querySelector('header').getBoundingClientRect().height")
    line = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize) * 1.5")
    assert header <= 3 * line + 16, (header, line)  # two lines (it took five)
    page.screenshot(path=str(tmp_path / "incidente-390.png"), full_page=True)
    _csp_clean(problems)
