"""The console as a person sees it: headless Chromium against `vigia up` on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.centre import Up


@pytest.fixture
def browser(chromium):  # type: ignore[no-untyped-def]
    """The module's Chromium (tests/conftest.py); what the test opened in it (each page
    in a context of its own: no cookie or storage from another test) is closed after."""
    yield chromium
    for context in chromium.contexts:
        context.close()


def _watch(page) -> list[str]:  # type: ignore[no-untyped-def]
    """What the page complains about: CSP violations (Chromium reports each on the
    console as an error), other console errors and uncaught script errors."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    return problems


def _csp_clean(problems: list[str]) -> None:
    assert not [p for p in problems if "Content Security Policy" in p or "uncaught" in p], problems


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """One `vigia up` with the national demo for the module's tests that read it or
    change what no other test here reads (the min-demo incident, gam-ejemplo's
    self-assessment): a start is seconds of CPU."""
    with Up(tmp_path_factory.mktemp("demo") / "data") as up:
        yield up


def test_login_and_alert_queue_in_spanish(browser, demo: Up, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, token = demo.port, demo.admin  # the one-time admin token, alone on stdout
    page = browser.new_page()
    problems = _watch(page)
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
    assert headers[1:4] == ["Recibida ▼", "Primera vez", "Severidad"]  # [0]: choose all
    rows = page.locator("#alertas tbody tr")
    assert rows.count() == 5
    text = page.locator("#alertas").inner_text()
    assert "Ministerio de Demostración" in text and "upload.wikimedia.org" in text
    page.screenshot(path=os.environ.get("VIGIA_SCREENSHOT", str(tmp_path / "alertas.png")))
    page.select_option("select[name=estado]", "dismissed")
    page.click("#filtrar")
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
    page.click("text=Log out")  # the session ends: the same pages ask for a login
    assert page.locator("h1").inner_text() == "Log in"
    again = page.goto(f"http://127.0.0.1:{port}/console/fuentes")
    assert again is not None and again.status == 401
    assert page.locator("h1").inner_text() == "Log in"
    _csp_clean(problems)


def _entity_token(data: Path, entity: str) -> str:
    """An entity's token from `vigia token create` (tests/test_console_alert_browser.py;
    the tests on a shared centre take theirs from the API, Up.token)."""
    import subprocess
    import sys

    env = {**os.environ, "VIGIA_DATA_DIR": str(data)}
    env.pop("VIGIA_DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-m", "vigia", "token", "create", "--role", "entity", "--entity", entity],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return out.stdout.strip()


def _login(page, base: str, token: str) -> None:  # type: ignore[no-untyped-def]
    page.context.clear_cookies()
    page.goto(f"{base}/console/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/alertas")


def test_incident_queue_page_and_the_entity_view(browser, demo: Up, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    admin, base = demo.admin, demo.url
    page = browser.new_page()
    problems = _watch(page)
    _login(page, base, admin)
    page.click("text=Incidentes")
    assert page.locator("h1").inner_text() == "Cola de incidentes"
    headers = page.locator("#incidentes th").all_inner_texts()
    assert headers == [
        "Nº",
        "Título",
        "Prioridad",
        "Estado",
        "Entidades",
        "Abierto",
        "Vence",
        "SLA",
    ]
    rows = page.locator("#incidentes tbody tr")
    assert rows.count() == 2
    row = page.locator("#incidentes tbody tr", has_text="min-demo")
    assert "Nuevo" in row.inner_text() and "En plazo" in row.inner_text()
    row.locator("a").first.click()
    assert "Ministerio de Demostración" in page.locator("h1").inner_text()
    assert page.locator("#estado").inner_text() == "Nuevo"
    assert "208.80.152.2" in page.locator("#alertas-incidente").inner_text()
    timeline = page.locator("#cronologia li")
    assert "Tráfico visto" in timeline.first.inner_text()  # the alert's own time comes first
    # Closing without a resolution is refused beside the field, in the console's
    # language (it was English before); a valid move goes through.
    page.click("#cerrar summary")
    page.click("#cerrar-confirmar")
    refusal = page.locator("#error-close-resolution").inner_text()
    assert "para cerrar hace falta una resolución" in refusal
    page.select_option("#transicion select[name=to]", "triaged")
    page.click("#transicion button")
    assert page.locator("#estado").inner_text() == "Clasificado"
    assert "Notificación" in page.locator("#cronologia").inner_text()  # triage notified
    page.click("#edicion summary")  # classify: RSIT and NCISS level
    page.select_option("#edicion select[name=rsit]", "malicious-code/c2-server")
    page.select_option("#edicion select[name=ncciss]", "3")
    page.click("#edicion button")
    ficha = page.locator("#ficha").inner_text()
    # RSIT class and type in Spanish (the type was the taxonomy's English name)
    assert "Código dañino / Servidor de mando y control (C2)" in ficha
    assert "P2 (NCISS 3)" in ficha
    page.fill("#nueva-tarea input[name=title]", "Bloquear 208.80.152.2")
    page.click("#nueva-tarea button")
    assert page.locator("#tareas li").inner_text().startswith("☐")
    page.click("#tareas li form button")
    assert page.locator("#tareas li").inner_text().startswith("☑")
    page.fill("#nota textarea", "Solo para el CERT")
    page.select_option("#nota select[name=tlp]", "red")
    page.click("#nota button")
    page.fill("#nota textarea", "Bloqueen 208.80.152.2 en el perímetro.")
    page.select_option("#nota select[name=tlp]", "green")
    page.click("#nota button")
    assert "Solo para el CERT" in page.locator("#cronologia").inner_text()
    url = page.url.split("?")[0]  # (after a save the address carries its message)
    page.screenshot(path=str(tmp_path / "incidente.png"))
    # The entity: sees its incident, not the CERT's RED note; acknowledges and replies.
    _login(page, base, demo.token("entity", "min-demo"))
    page.click("text=Incidentes")
    assert page.locator("#incidentes tbody tr").count() == 1  # not the other entity's
    page.locator("#incidentes tbody tr a").first.click()
    assert page.url == url
    text = page.locator("#cronologia").inner_text()
    assert "Bloqueen 208.80.152.2" in text and "Solo para el CERT" not in text
    assert page.locator("#transicion").count() == 0  # no lifecycle for the entity
    page.click("#acusar")
    assert "Recibo acusado el" in page.locator("main").inner_text()
    page.fill("#respuesta textarea", "Bloqueado a las 10:05.")
    page.click("#respuesta button")
    assert "Bloqueado a las 10:05." in page.locator("#cronologia").inner_text()
    other = url.rsplit("/", 1)[0] + ("/2" if url.endswith("/1") else "/1")
    page.screenshot(path=str(tmp_path / "incidente-entidad.png"))
    assert page.goto(other).status == 404  # the other entity's incident
    assert page.locator("h1").inner_text() == "No se pudo mostrar esta página"
    _csp_clean(problems)


def test_an_entity_fills_and_submits_and_the_cert_reviews_and_certifies(browser, demo, tmp_path):  # type: ignore[no-untyped-def]
    from datetime import date, timedelta

    import httpx

    from certification import catalogue

    text = (catalogue.resources.files("certification.catalogues") / catalogue.BUNDLED).read_text()
    cat, _ = catalogue.load_text(text)
    evidence = tmp_path / "acta.pdf"
    evidence.write_bytes(b"%PDF-1.4\n% acta de aprobacion\n")
    admin, base = demo.admin, demo.url
    page = browser.new_page()
    problems = _watch(page)
    _login(page, base, demo.token("entity", "gam-ejemplo"))
    page.click("text=Autoevaluación")
    assert page.locator("#estado-cert strong").inner_text() == "Sin iniciar"
    page.click("#iniciar")
    assert page.locator("#estado-eval").inner_text() == "En curso"
    assert page.locator("article.control").count() == len(cat.controls)
    gob01 = page.locator("#c-GOB-01")
    gob01.locator("details summary").click()  # the guidance, written for the entity
    gob01_control = cat.control("GOB-01")
    assert gob01_control is not None and gob01_control.objective in gob01.inner_text()
    assert "A.5.1" in gob01.inner_text()
    idle = "body[data-ocupado=no]"  # the page's background saves are done

    def answer(cid: str, value: str, why: str = "") -> None:
        block = page.locator(f"#c-{cid}")
        block.locator("select[name=answer]").select_option(value)
        block.locator("textarea[name=justification]").fill(why)
        block.locator("button.guardar").click()
        page.wait_for_selector(idle, state="attached")

    for c in cat.controls:
        answer(c.id, "not_applicable" if c.id == "RED-04" else "implemented")
    # Not applicable without a reason is refused, next to its control, and says so.
    refused = page.locator("#c-RED-04 .error").inner_text()  # in Spanish
    assert "RED-04: «no aplica» necesita una justificación" in refused
    answer("RED-04", "not_applicable", "El municipio no está conectado a la red del Estado.")
    assert page.locator("#avance").inner_text() == "100 %"
    until = (date.today() + timedelta(days=365)).isoformat()
    for c in cat.controls:
        if c.mandatory:
            form = page.locator(f"#c-{c.id} .adjuntar")
            form.locator("input[type=date]").fill(until)
            form.locator("input[type=file]").set_input_files(str(evidence))
            form.locator("button").click()
            page.wait_for_selector(idle, state="attached")
    assert page.locator("#puntaje").inner_text() != "100 %"  # recommended ones lack evidence
    page.click("#enviar")
    assert page.locator("#estado-eval").inner_text() == "Enviada"
    assert page.locator("form.respuesta").count() == 0  # submitted: no more changes
    page.screenshot(path=str(tmp_path / "autoevaluacion.png"))
    # The CERT reviews it: accepts every control, then decides by the policy.
    _login(page, base, admin)
    page.click("text=Revisiones")
    # gam-ejemplo's row (the demo constituency has assessments waiting too)
    page.locator("#revisiones tr", has_text="gam-ejemplo").locator("a").first.click()
    for c in cat.controls:
        if c.id != "RED-04":
            block = page.locator(f"#c-{c.id}")
            block.locator("select[name=verdict]").select_option("accepted")
            block.locator("button.guardar").click()
            page.wait_for_selector(idle, state="attached")
    assert page.locator("#estado-eval").inner_text() == "En revisión"
    page.click("#vista-previa")  # the policy's outcome, before confirming
    assert page.locator("#resultado").inner_text() == "Certificada"
    page.click("#decidir")
    assert "Certificada" in page.locator("main").inner_text()
    page.click("text=Certificación")
    assert page.locator("h1").inner_text() == "Avance hacia la meta nacional de certificación"
    page.wait_for_function("document.body.dataset.graficos === 'listos'")
    progress = httpx.get(
        f"{base}/api/v1/certification/progress", headers={"Authorization": f"Bearer {admin}"}
    ).json()
    share = progress["certified"] / progress["total"] * 100  # the demo's constituency
    assert page.locator("#porcentaje").inner_text() == f"{share:.1f} %"
    assert "Gobierno Autónomo Municipal de Ejemplo" not in page.locator("#cercanas").inner_text()
    page.screenshot(path=str(tmp_path / "certificacion.png"), full_page=True)
    # The entity sees its certificate; anyone can verify it without logging in.
    _login(page, base, demo.token("entity", "gam-ejemplo"))
    page.click("text=Autoevaluación")
    assert page.locator("#estado-cert strong").inner_text() == "Certificada"
    page.locator("#estado-cert a").click()
    page.context.clear_cookies()
    page.reload()
    assert page.locator("#veredicto").inner_text() == "Certificado auténtico y vigente."
    assert page.goto(f"{base}/verificar/VIG-FALSO").status == 404
    _csp_clean(problems)


def test_a_hostile_entity_name_runs_no_script_on_the_dashboard(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 13, finding 3: the name is shown as text and the charts still draw."""
    import httpx

    # Without the demo constituency, so the new entity is among the closest to certification.
    with Up(tmp_path / "data", "--no-demo") as up:
        admin, base = up.admin, up.url
        name = "</script><img src=x onerror=alert(2)>"
        r = httpx.post(
            f"{base}/api/v1/entities",
            json={"id": "xss-prueba", "name": name, "level": "municipal"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert r.status_code == 201, r.text
        page = browser.new_page()
        problems = _watch(page)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        _login(page, base, admin)
        page.click("text=Certificación")
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # an onerror would have fired by now
        assert dialogs == []  # (before the fix: ["2"])
        assert page.locator("img").count() == 0  # no element made of the name
        assert name in page.locator("#cercanas").inner_text()  # shown, as text
        page.wait_for_function("document.body.dataset.graficos === 'listos'")
        for chart in ("#grafico-tendencia", "#grafico-niveles"):  # drawn: pixels on the canvas
            painted = page.eval_on_selector(
                chart,
                "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
                ".some((v, i) => i % 4 === 3 && v > 0)",
            )
            assert painted, chart
        _csp_clean(problems)


def test_api_docs_render_from_local_files_under_the_csp(browser, demo: Up) -> None:  # type: ignore[no-untyped-def]
    """Swagger UI at /api/docs for a logged-in person: the operations listed from the
    OpenAPI document, every file from this server, no CSP violation."""
    port, token = demo.port, demo.admin
    page = browser.new_page()
    problems = _watch(page)
    origins: set[str] = set()
    page.on("request", lambda r: origins.add(r.url.split("/")[2]))
    page.goto(f"http://127.0.0.1:{port}/api/docs")  # no session: the login first
    assert page.locator("h1").inner_text() == "Iniciar sesión"
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/alertas")
    page.goto(f"http://127.0.0.1:{port}/api/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert len(paths) > 55 and any("/api/v1/alerts" in p for p in paths)
    assert "Authorize" in page.locator(".auth-wrapper").inner_text()
    assert origins == {f"127.0.0.1:{port}"}  # no CDN: everything from the centre
    _csp_clean(problems)
