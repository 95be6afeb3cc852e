"""The console as a person sees it: headless Chromium against `vigia up` on loopback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.test_up import _free_port, _start, _stop, _wait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def test_login_and_alert_queue_in_spanish(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    proc = _start(tmp_path / "data", port)
    try:
        _wait(port, proc)
        assert proc.stdout is not None
        token = proc.stdout.readline().strip()  # the one-time admin token, alone on stdout
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")  # the console asks for a login first
        assert page.locator("h1").inner_text() == "Iniciar sesión"
        assert "Inicie sesión para ver la consola." in page.locator(".error").inner_text()
        page.fill("#token", "vga_equivocado")
        page.click("button[type=submit]")
        assert "Token inválido" in page.locator(".error").inner_text()
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_url("**/console/alertas")
        assert page.locator("h1").inner_text() == "Alertas"
        headers = page.locator("#alertas th").all_inner_texts()
        assert headers[:3] == ["Primera vez", "Eventos", "Origen"]
        rows = page.locator("#alertas tbody tr")
        assert rows.count() == 5
        text = page.locator("#alertas").inner_text()
        assert "Ministerio de Demostración" in text and "upload.wikimedia.org" in text
        page.screenshot(path=os.environ.get("VIGIA_SCREENSHOT", str(tmp_path / "alertas.png")))
        page.select_option("select[name=status]", "dismissed")
        page.click("form.filters button")
        assert "No hay alertas con estos filtros." in page.locator("main").inner_text()
        page.click("text=Sensores")
        assert page.locator("h1").inner_text() == "Sensores"
        row = page.locator("#sensores tbody tr")
        assert row.count() == 1 and "sensor-demo-01" in row.inner_text()
        page.click("text=Fuentes")
        assert page.locator("h1").inner_text() == "Fuentes de indicadores"
        assert "demo-event.json" in page.locator("#fuentes").inner_text()
        assert "correcta" in page.locator("#fuentes").inner_text()
        page.click('a[href="?lang=en"]')
        assert page.locator("h1").inner_text() == "Indicator sources"
    finally:
        _stop(proc)
