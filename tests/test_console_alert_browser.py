"""The alert page and the pivots as a person uses them (issue 15): headless Chromium
against `vigia up` on loopback, as tests/test_console_browser.py does."""

from __future__ import annotations

from pathlib import Path

from tests.centre import Up
from tests.test_console_browser import (  # noqa: F401 (browser is a fixture)
    _csp_clean,
    _login,
    _watch,
    browser,
)

# `vigia up` with no incident opened by itself: the demo's alerts stay new.
UNTRIAGED = {"VIGIA_INCIDENT_MIN_SEVERITY": "101"}


def test_open_an_alert_acknowledge_it_and_pivot_from_its_domain(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with Up(tmp_path / "data", env=UNTRIAGED) as up:
        admin, base = up.admin, up.url
        page = browser.new_page()
        problems = _watch(page)
        _login(page, base, admin)
        # The queue: a row opens its alert page.
        row = page.locator("#alertas tbody tr", has_text="208.80.152.3")
        assert "Nueva" in row.inner_text()
        row.locator("a.abrir").click()
        page.wait_for_url("**/console/alertas/*")
        assert page.locator("h1").inner_text() == "Alerta: upload.wikimedia.org"
        indicators = page.locator("#indicadores tbody tr")
        assert indicators.count() == 1
        assert "CERT-DEMO" in indicators.inner_text() and "TLP:" in indicators.inner_text()
        where = page.locator("#donde").inner_text()
        assert "sensor-demo-01" in where and "208.80.152.3" in where
        assert "Community ID" in where
        assert page.locator("#ecs pre").is_hidden()  # the raw document, folded
        page.click("#ecs summary")
        assert '"community_id"' in page.locator("#ecs pre").inner_text()
        # Acknowledge: a Spanish message, the status changed, the action gone.
        assert "avistamiento" in page.locator("#acusar").inner_text()
        page.click("#acusar button")
        assert (
            page.locator("#mensaje").inner_text()
            == "Alerta reconocida; el avistamiento para MISP quedó en cola."
        )
        assert page.locator("#estado").inner_text() == "Reconocida"
        assert page.locator("#acusar").count() == 0
        page.screenshot(path=str(tmp_path / "alerta.png"), full_page=True)
        # Pivot from the domain to its alerts (both of the demo's) and its sightings.
        page.locator("#que a.pivote").click()
        assert page.locator("h1").inner_text() == "Buscar un valor: upload.wikimedia.org"
        assert page.locator("#pivote-alertas tbody tr").count() == 2
        assert page.locator("#observaciones").is_visible()
        assert page.locator("#primera").inner_text() != "—"
        page.screenshot(path=str(tmp_path / "pivote.png"), full_page=True)
        alert_url = page.locator("#pivote-alertas tbody tr a").first.get_attribute("href")
        # Promote: an alert becomes a new incident, whose page opens holding it.
        page.goto(f"{base}/console/buscar?q=bro.org")
        page.locator("#pivote-alertas tbody tr a").first.click()
        page.wait_for_url("**/console/alertas/*")
        assert "MISP" in page.locator("#promover").inner_text()  # what it sends, said
        page.click("#promover button")
        page.wait_for_url("**/console/incidentes/*")
        assert "bro.org" in page.locator("main").inner_text()
        # An entity: the other entity's alerts are not listed, nor their page shown.
        _login(page, base, up.token("entity", "gam-ejemplo"))
        page.goto(f"{base}/console/buscar?q=upload.wikimedia.org")
        assert "Ninguna alerta con este valor." in page.locator("main").inner_text()
        assert page.locator("#observaciones").count() == 0  # no stored observations
        page.goto(f"{base}/console/buscar?q=bro.org")
        assert page.locator("#pivote-alertas tbody tr").count() == 1  # its own
        assert page.goto(f"{base}{alert_url}").status == 404
        _csp_clean(problems)
