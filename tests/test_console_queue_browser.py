"""The alert queue as an analyst uses it (issue 15): headless Chromium (Debian's, through
Playwright) against `vigia up` on loopback, with alerts of known entities and
received times stored beside the demo's. Filters and the address, bulk dismiss with
a reason, the keyboard, the poll that keeps the analyst's place, no message id or
English on the Spanish pages, axe-core's serious and critical rules, 390 px."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.settings import load_settings
from tests import a11y
from tests.centre import Up
from tests.queue_helpers import Spec, at, store
from tests.test_console_alert_browser import UNTRIAGED
from tests.test_console_browser import (  # noqa: F401 (browser is a fixture)
    _csp_clean,
    _login,
    _watch,
    browser,
)
from tests.test_i18n import untranslated
from vigia.wiring import build

GAM = ("gam-ejemplo", "Gobierno Autónomo Municipal de Ejemplo")
MIN = ("min-demo", "Ministerio de Demostración")
# Each test's own stored alerts, by received time (the demo's are received now):
# the first test's at 08:00-08:50 on 2026-11-30, the keyboard test's two hours later.
PAST = "recibida_desde=2026-11-30T08:00&recibida_hasta=2026-11-30T09:00"
KEYS = 100  # the keyboard test's alerts are _n(KEYS + 1) ...
KEYS_PAST = "recibida_desde=2026-11-30T10:00&recibida_hasta=2026-11-30T11:00"


def _n(i: int) -> str:
    return f"{i:032x}"


def _add(data: Path, specs: list[Spec]) -> None:
    """Alerts stored as the correlator stores them, into the running centre's store."""
    services = build(load_settings(data_dir=data, database_url=""))
    try:
        with services.db.transaction() as s:
            store(s, specs)
    finally:
        services.close()


def _specs(first: int, minutes: int) -> list[Spec]:
    """Six alerts of gam-ejemplo received 08:00-08:50 and three of min-demo at 08:15,
    08:25, 08:35 (`minutes` later), numbered from `first` + 1."""
    specs = [Spec(first + i, entity=GAM, received=at(minutes + 10 * (i - 1))) for i in range(1, 7)]
    specs += [Spec(first + 7 + i, entity=MIN, received=at(minutes + 15 + 10 * i)) for i in range(3)]
    return specs


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One `vigia up` (demo alerts left new; a start is seconds of CPU) for the module,
    with the alerts of _specs for the first test (from 08:00) and another set for the
    keyboard test (from 10:00), so that neither sees what the other changed."""
    data = tmp_path_factory.mktemp("queue") / "data"
    # `vigia up` loads the demo first.
    with Up(data, env=UNTRIAGED, within_s=180) as up:
        admin = up.admin
        _add(data, _specs(0, 0) + _specs(KEYS, 120))
        base = up.url
        # The first page waits for the start's warm-up (seconds of CPU on a busy machine).
        first = httpx.get(
            f"{base}/console/alertas", headers={"Authorization": f"Bearer {admin}"}, timeout=180
        )
        assert first.status_code == 200
        yield {"base": base, "admin": admin, "data": data}


def _rows(page: Any) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        "#alertas tbody tr", "rows => rows.map(r => r.dataset.id)"
    )
    return ids


def _spanish(page: Any) -> None:
    text = page.locator("body").inner_text()
    assert not untranslated(text, "es"), (page.url, untranslated(text, "es"))


def test_filter_by_entity_and_time_the_address_keeps_it_and_bulk_dismiss_three(  # type: ignore[no-untyped-def]
    browser,  # noqa: F811
    centre: dict[str, Any],
) -> None:
    base = centre["base"]
    page = browser.new_page()
    page.set_default_timeout(90_000)  # a busy machine: pages may take seconds
    problems = _watch(page)
    _login(page, base, centre["admin"])
    shown = _rows(page)  # newest received first: the demo's (received now), then ours
    assert shown[-9:] == [_n(6), _n(5), _n(9), _n(4), _n(8), _n(3), _n(7), _n(2), _n(1)]
    page.select_option("#f-entidad", GAM[0])
    page.fill("#f-rd", "2026-11-30T08:10:00")
    page.fill("#f-rh", "2026-11-30T08:40:00")
    page.click("#filtrar")
    assert _rows(page) == [_n(4), _n(3), _n(2)]  # 08:30, 08:20, 08:10; not 08:40
    query = parse_qs(urlsplit(page.url).query)
    assert query["entidad"] == [GAM[0]]
    assert query["recibida_desde"] == ["2026-11-30T08:10"]  # (the field drops ":00")
    assert query["recibida_hasta"] == ["2026-11-30T08:40"]
    # The address is the queue: opened anew (bookmarked, shared), the same alerts and
    # the form filled as it was.
    again = browser.new_page()
    again.set_default_timeout(90_000)
    again.context.add_cookies(page.context.cookies())
    again.goto(page.url)
    assert _rows(again) == [_n(4), _n(3), _n(2)]
    assert again.input_value("#f-entidad") == GAM[0]
    assert again.input_value("#f-rd") == "2026-11-30T08:10"
    # Free text and a sort, kept with the other filters.
    page.fill("#f-q", "HOST3")
    page.click("#filtrar")
    assert _rows(page) == [_n(3)]
    page.goto(f"{base}/console/alertas?entidad={GAM[0]}&{PAST}")
    page.click("#alertas th >> text=Recibida")  # descending now: ascending next
    assert _rows(page) == [_n(i) for i in range(1, 7)]
    assert parse_qs(urlsplit(page.url).query)["orden"] == ["recibida"]
    assert page.locator("#n-all").inner_text() == "6"
    _spanish(page)
    # Bulk: dismiss three with a reason, and see the message.
    page.goto(f"{centre['base']}/console/alertas?entidad={MIN[0]}&{PAST}")
    assert _rows(page) == [_n(9), _n(8), _n(7)]
    page.check("#todas")
    assert page.locator("#elegidas").inner_text() == "(elegidas: 3)"
    page.select_option("#l-motivo", "false_positive")
    page.click("#b-descartar")
    assert (
        page.locator("#mensaje").inner_text() == "Alertas descartadas: 3 (motivo: Falso positivo)."
    )
    # Back on the same filters, each row saying its new status in words.
    assert parse_qs(urlsplit(page.url).query)["entidad"] == [MIN[0]]
    assert _rows(page) == [_n(9), _n(8), _n(7)]
    for row in page.locator("#alertas tbody tr").all():
        assert "Descartada" in row.inner_text()
    assert page.locator("#n-dismissed").inner_text() == "3"
    # Dismissing without a reason: refused beside the actions, the choice kept.
    page.goto(f"{centre['base']}/console/alertas?entidad={GAM[0]}&{PAST}")
    page.check(f"input[value='{_n(1)}']")
    page.click("#b-descartar")
    assert "para descartar hace falta un motivo" in page.locator("#error").inner_text()
    assert page.is_checked(f"input[value='{_n(1)}']")
    _spanish(page)
    _csp_clean(problems)


def test_keyboard_j_k_a_d_the_help_panel_and_new_alerts_announced(  # type: ignore[no-untyped-def]
    browser,  # noqa: F811
    centre: dict[str, Any],
) -> None:
    page = browser.new_page()
    page.set_default_timeout(90_000)
    problems = _watch(page)
    _login(page, centre["base"], centre["admin"])
    page.goto(f"{centre['base']}/console/alertas?entidad={GAM[0]}&{KEYS_PAST}&estado=new")
    rows = _rows(page)
    assert rows[:2] == [_n(KEYS + 6), _n(KEYS + 5)]
    page.keyboard.press("?")
    assert page.locator("#atajos").is_visible()
    assert "Reconocer las alertas elegidas" in page.locator("#atajos").inner_text()
    _spanish(page)
    page.keyboard.press("Escape")
    assert page.locator("#atajos").is_hidden()
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    current = page.locator("#alertas tbody tr.actual")
    assert current.count() == 1 and current.get_attribute("data-id") == _n(KEYS + 6)
    page.keyboard.press("a")  # acknowledges the row under the cursor
    page.wait_for_selector("#mensaje")
    assert page.locator("#mensaje").inner_text() == (
        "Alertas reconocidas: 1; sus avistamientos para MISP quedaron en cola."
    )
    assert _n(KEYS + 6) not in _rows(page)  # the queue shows new alerts: it left
    page.keyboard.press("j")
    page.keyboard.press("d")  # chooses the row and asks for the reason
    assert page.evaluate("document.activeElement.id") == "l-motivo"
    assert page.is_checked(f"input[value='{_rows(page)[0]}']")
    page.select_option("#l-motivo", "benign")
    page.focus("#l-motivo")
    page.keyboard.press("Enter")  # Enter in the reason dismisses, nothing else
    assert page.locator("#mensaje").inner_text() == "Alertas descartadas: 1 (motivo: Benigna)."
    # The poll: new alerts announced; the list, the choice and the cursor stay put.
    page.goto(f"{centre['base']}/console/alertas?entidad={GAM[0]}")
    before = _rows(page)
    page.check(f"input[value='{before[1]}']")  # the row clicked is the current one
    page.keyboard.press("j")  # and j moves on from it
    _add(centre["data"], [Spec(30, entity=GAM), Spec(31, entity=GAM), Spec(32, entity=MIN)])
    page.evaluate("window.vigiaCola.sondear()")  # the poll, now rather than in 30 s
    banner = page.locator("#nuevas")
    banner.wait_for(state="visible")
    assert banner.inner_text() == "Llegaron 2 alertas nuevas: mostrarlas"  # not min-demo's
    _spanish(page)
    assert _rows(page) == before  # nothing moved under the analyst
    assert page.is_checked(f"input[value='{before[1]}']")
    assert page.locator("#alertas tbody tr.actual").get_attribute("data-id") == before[2]
    banner.locator("a").click()
    assert _rows(page)[:2] == [_n(31), _n(30)] or _rows(page)[:2] == [_n(30), _n(31)]
    _csp_clean(problems)


def test_no_serious_or_critical_axe_violation_and_the_queue_fits_390_px(  # type: ignore[no-untyped-def]
    browser,  # noqa: F811
    centre: dict[str, Any],
) -> None:
    page = browser.new_page()
    page.set_default_timeout(90_000)
    _login(page, centre["base"], centre["admin"])
    page.goto(f"{centre['base']}/console/alertas?entidad={GAM[0]}&hecho=dismiss&n=1&motivo=benign")
    assert a11y.violations(page) == []
    page.keyboard.press("?")  # the help panel open
    assert a11y.violations(page) == []
    page.goto(f"{centre['base']}/console/alertas?recibida_desde=ayer")  # an error by a field
    assert a11y.violations(page) == []
    page.goto(f"{centre['base']}/console/alertas/{_n(2)}")
    assert a11y.violations(page) == []
    # The check is live: a field without a label on the page is found.
    page.evaluate("document.querySelector('main').append(document.createElement('input'))")
    assert [v["id"] for v in a11y.violations(page)] == ["label"]
    # 390 px wide: nothing but the table's own box scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{centre['base']}/console/alertas?entidad={GAM[0]}")
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.querySelector('main').scrollWidth]"
    )
    assert max(widths) <= 390, widths  # the table scrolls inside its own box
    for field in ("#f-q", "#f-entidad", "#f-rd", "#b-descartar"):
        box = page.locator(field).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, field
    page.screenshot(path=str(Path(centre["data"]).parent / "cola-390.png"), full_page=True)
