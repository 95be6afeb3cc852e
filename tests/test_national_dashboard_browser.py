"""The national certification dashboard (issue 16) in headless Chromium, on the
demo constituency `vigia up` loads: every chart drawn with data, each with its
table and text description, the chosen day kept in the URL, usable at 390 px."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx

from tests.centre import Up
from tests.test_console_browser import (  # noqa: F401 (browser is a fixture)
    _csp_clean,
    _login,
    _watch,
    browser,
)

CHARTS = ("tendencia", "proyeccion", "niveles", "departamentos")


def _painted(page, chart: str) -> bool:  # type: ignore[no-untyped-def,unused-ignore]
    return bool(
        page.eval_on_selector(
            f"#grafico-{chart}",
            "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
            ".some((v, i) => i % 4 === 3 && v > 0)",
        )
    )


def test_the_demo_dashboard_draws_every_chart_with_its_table(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    up = Up(tmp_path / "data")
    try:
        up.start()
        admin, base = up.admin, up.url
        auth = {"Authorization": f"Bearer {admin}"}
        p = httpx.get(f"{base}/api/v1/certification/progress", headers=auth, timeout=60).json()
        assert p["total"] >= 200 and 0 < p["ratio"] < 0.6 and p["forecast"]["month"]
        page = browser.new_page()
        problems = _watch(page)
        _login(page, base, admin)
        page.click("text=Certificación")
        try:
            page.wait_for_selector("body[data-graficos=listos]", state="attached")
        except Exception:
            raise AssertionError(problems) from None
        for chart in CHARTS:
            assert _painted(page, chart), chart
            canvas = page.locator(f"#grafico-{chart}")
            assert canvas.get_attribute("role") == "img"
            table = canvas.get_attribute("aria-describedby")
            assert table == f"tabla-{chart}"
            assert page.locator(f"#{table} tbody tr").count() > 1, chart  # with data
            caption = canvas.get_attribute("aria-labelledby")
            assert page.locator(f"#{caption}").inner_text().strip()
        levels = page.locator("#tabla-niveles").text_content() or ""
        assert "Gobierno municipal" in levels and "Universidad" in levels
        depts = page.locator("#tabla-departamentos").text_content() or ""
        assert "Gobierno Autónomo Departamental de La Paz" in depts
        assert "Entidades nacionales (sin departamento)" in depts
        assert page.locator("#por-vencer tbody tr").count() == len(p["expiring"]) > 0
        # The day the target should be reached: chosen in the form, kept in the URL.
        by = date(date.today().year + 2, 6, 30).isoformat()
        page.fill("#fecha", by)
        page.click("#meta-fecha button")
        page.wait_for_url(f"**/console/certificacion?fecha={by}")
        page.wait_for_selector("body[data-graficos=listos]", state="attached")
        plan = httpx.get(
            f"{base}/api/v1/certification/progress", params={"by": by}, headers=auth, timeout=60
        ).json()
        needed = page.locator("#ritmo-necesario").inner_text()
        assert by in needed and str(plan["forecast"]["pace_needed"]) in needed
        assert page.locator("#fecha").input_value() == by
        assert _painted(page, "proyeccion")
        page.reload()  # the URL alone brings it back
        assert page.locator("#fecha").input_value() == by
        # At 390 px the page does not scroll sideways.
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        page.wait_for_selector("body[data-graficos=listos]", state="attached")
        width = page.evaluate("document.querySelector('main').scrollWidth")
        assert width <= 390, width
        page.screenshot(path=str(tmp_path / "nacional-390.png"), full_page=True)
        _csp_clean(problems)
    finally:
        up.stop(patient=True)  # killed if a loaded machine makes it slow
