"""Messages for people as data (issues 14 and 15): the gettext catalogues in
core/locale, the services' coded refusals translated once by the API, and the
console pages checked for message ids and English left in Spanish."""

from __future__ import annotations

import ast
import re
import string
import tomllib
from collections.abc import Iterator
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy.orm.exc import StaleDataError

from api import i18n
from api.app import create_app
from api.errors import PARAM_LABELS
from certification import errors as cert_errors
from certification.certificates import STATES as CERT_STATES
from certification.progress import CSV_COLUMNS
from certification.registry import LEVELS
from certification.scoring import ANSWERS
from core.i18n import render_mail
from core.tokens import Role
from incidents import alert_queue, taxonomy
from incidents import errors as incident_errors
from incidents.triage import ALERT_STATES, DISMISS_REASONS
from tests.cert_helpers import fill
from tests.conftest import bearer, make_token
from tests.incident_helpers import seen, world
from vigia.wiring import Services

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("api", "incidents", "certification", "correlator", "vigia")


def catalogue(lang: str) -> Catalog:
    with i18n.po_path(lang).open("rb") as f:
        return read_po(f, locale=lang)


def entries(lang: str) -> dict[str, str]:
    return {str(m.id): str(m.string) for m in catalogue(lang) if m.id}


# t("id") in templates and the console, N_("id") where an id is only passed on, and
# text(lang, "id", params) in the services (what they write into records). (Babel's
# python extractor reads tokens: `t["name"]` in a service would pass for a call.)
FRONT: dict[str, Any] = {"t": None, "N_": None, "text": (2,)}
SERVICES: dict[str, Any] = {"N_": None, "text": (2,)}


def _extracted(
    folder: str, method: str, pattern: str, keywords: dict[str, Any] = FRONT
) -> dict[str, str]:
    """Babel's own extractors: the message ids passed as literals to the keywords."""
    found: dict[str, str] = {}
    for name, line, message, _comments, _context in extract_from_dir(
        str(ROOT / folder), method_map=[(pattern, method)], keywords=keywords
    ):
        if isinstance(message, str):
            found.setdefault(message, f"{folder}/{name}:{line}")
    return found


def dynamic_ids() -> dict[str, str]:
    """Ids the templates build from a value ("cert.state." ~ s): one per value the
    services can hold, read from the services' own vocabularies."""
    v = taxonomy.vocab()
    kinds = set()
    for path in (ROOT / "incidents").rglob("*.py"):
        kinds |= set(re.findall(r'record\(\s*session,\s*\w+,\s*"([a-z_]+)"', path.read_text()))
    families = {
        "status": [*ALERT_STATES, "in_incident"],
        "inc.state": [*v["states"], "all", "open"],
        "inc.kind": sorted(kinds | {"seen", "notification", "ack", "reply", "breach"}),
        "inc.clock": ["acknowledge", "contain", "resolve", "entity_reply"],
        "cert.state": list(CERT_STATES),
        "cert.a": ["in_progress", "submitted", "in_review", "returned", "decided"],
        "cert.ans": list(ANSWERS),
        "cert.rev": ["accepted", "rejected"],
        "cert.decision": ["certified", "conditional", "denied"],
        "cert.cs": ["valid", "expired", "suspended", "revoked"],
        "level": list(LEVELS),
        "rsit": list(taxonomy.rsit().names),
        "resolution": list(v["resolutions"]),
        "dismiss": list(DISMISS_REASONS),
        "ncciss": list(v["ncciss"]),
        "tlp": ["clear", "green", "amber", "amber+strict", "red"],
        "pap": list(taxonomy.pap_levels()),
        "role": [r.value for r in Role],
        "sources": ["ok", "error"],
        "csv": list(CSV_COLUMNS),
        "kind": [*alert_queue.kinds(), alert_queue.OTHER_KIND],
        "sev": list(alert_queue.SEVERITIES),
    }
    return {
        f"{fam}.{value}": f"vocabulary {fam}" for fam, vals in families.items() for value in vals
    }


def error_codes() -> dict[str, str]:
    return {
        **{c: "incidents/errors.py" for c in incident_errors.TEMPLATES},
        **{c: "certification/errors.py" for c in cert_errors.TEMPLATES},
    }


def required_ids() -> dict[str, str]:
    return {
        **_extracted("api/templates", "jinja2.ext:babel_extract", "**.html"),
        **_extracted("api", "python", "**.py"),
        **{
            k: v
            for pkg in SOURCES[1:]
            for k, v in _extracted(pkg, "python", "**.py", SERVICES).items()
        },
        **dynamic_ids(),
        **error_codes(),
    }


def test_babel_extracts_the_ids_the_console_uses() -> None:
    """The extractors are live: they find ids in templates and code (a broken
    keyword or method map would make the check below vacuous)."""
    found = required_ids()
    assert found["nav.alerts"].startswith("api/templates/base.html")
    assert "inc.add_task" in found and "cert.verify" in found
    assert found["decision.score_low"].startswith("certification/policy.py")
    assert len(found) > 300


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_every_id_in_use_has_a_translation_in_each_language(lang: str) -> None:
    have = entries(lang)
    missing = {k: where for k, where in required_ids().items() if not have.get(k, "").strip()}
    assert not missing, f"{lang}: {len(missing)} ids without a translation: {missing}"


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_both_languages_fill_the_same_fields_and_english_is_the_services_text() -> None:
    es, en = entries("es"), entries("en")
    assert set(es) == set(en)
    wrong = {k: (es[k], en[k]) for k in es if _fields(es[k]) != _fields(en[k])}
    assert not wrong, wrong
    # The English catalogue says what the services' templates say (logs, CLI).
    drift = {c: en.get(c) for c in error_codes() if en.get(c) != _template(c)}
    assert not drift, drift


def _template(code: str) -> str:
    return {**incident_errors.TEMPLATES, **cert_errors.TEMPLATES}[code]


ERROR_CLASSES = {
    "IncidentError",
    "NotFound",
    "Conflict",
    "TriageError",
    "InIncident",
    "CertError",
    "CertNotFound",
    "CertConflict",
    "EntityError",
    "CatalogueError",
}


def _raise_sites() -> Iterator[tuple[str, ast.Call]]:
    for pkg in SOURCES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    func = node.exc.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    if name in ERROR_CLASSES:
                        yield f"{path.relative_to(ROOT)}:{node.lineno}", node.exc


def test_every_refusal_is_raised_with_a_known_code() -> None:
    """No sentence built in the services: each raise names a code with a template,
    and gives the fields that template fills."""
    codes = error_codes()
    bad = []
    sites = list(_raise_sites())
    for where, call in sites:
        first = call.args[0] if call.args else None
        if not (isinstance(first, ast.Constant) and first.value in codes):
            bad.append(f"{where}: {ast.unparse(first) if first else '(no code)'}")
            continue
        given = {k.arg for k in call.keywords}
        if given != _fields(_template(first.value)):
            bad.append(f"{where}: {first.value} given {sorted(given)}")
    assert len(sites) > 80
    assert not bad, bad


def test_errors_keep_readable_english_and_carry_code_and_params() -> None:
    exc = incident_errors.Conflict("incident.stale", incident_id=1, version=5, current=6)
    assert str(exc).startswith("incident 1 changed since version 5 (now 6)")
    assert (exc.code, exc.params) == (
        "incident.stale",
        {"incident_id": 1, "version": 5, "current": 6},
    )
    assert i18n.text("es", exc.code, exc.params).startswith(
        "el incidente 1 cambió desde la versión 5 (ahora 6)"
    )
    bare = incident_errors.Conflict("something said in words")  # code written before codes
    assert (str(bare), bare.code) == ("something said in words", "incident.error")


def test_the_catalogues_are_package_data_and_load_as_gettext() -> None:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = conf["tool"]["setuptools"]["package-data"]["core"]
    assert "locale/*/LC_MESSAGES/*.po" in data
    assert any(d.startswith("babel") for d in conf["project"]["dependencies"])
    assert i18n.translations("es").gettext("nav.alerts") == "Alertas"
    assert i18n.translations("en").gettext("nav.alerts") == "Alerts"
    assert i18n.translations("xx").gettext("nav.alerts") == "Alertas"  # unknown: Spanish


def test_language_negotiation() -> None:
    assert i18n.pick(None, "en-GB,en;q=0.9") == "en"
    assert i18n.pick(None, "fr, es;q=0.5, en;q=0.4") == "es"
    assert i18n.pick("en", "es") == "en"
    assert i18n.pick(None, "de") == "es"
    assert i18n.pick(None, "", default="en") == "en"


# --- the API: one handler per error base ------------------------------------------


@pytest.fixture
def app_client(sqlite_services: Services) -> TestClient:
    return TestClient(create_app(sqlite_services))


def test_a_refusal_answers_its_status_code_params_and_the_callers_language(
    app_client: TestClient, sqlite_services: Services
) -> None:
    an = bearer(make_token(sqlite_services, Role.ANALYST))
    made = app_client.post("/api/v1/incidents", json={"title": "Llamada"}, headers=an)
    inc = made.json()
    body = {"version": inc["version"] + 1, "to": "triaged"}
    url = f"/api/v1/incidents/{inc['id']}/transitions"
    plain = app_client.post(url, json=body, headers=an)
    assert plain.status_code == 409
    assert plain.json()["code"] == "incident.stale"
    assert plain.json()["params"] == {"incident_id": inc["id"], "version": 2, "current": 1}
    assert plain.json()["detail"].startswith(f"incident {inc['id']} changed since version 2")
    es = app_client.post(url, json=body, headers={**an, "Accept-Language": "es-BO,es;q=0.9"})
    assert es.status_code == 409
    assert es.json()["detail"].startswith(f"el incidente {inc['id']} cambió desde la versión 2")
    by_name = app_client.post(f"{url}?lang=es", json=body, headers=an)
    assert by_name.json()["detail"] == es.json()["detail"]
    missing = app_client.get("/api/v1/incidents/999", headers={**an, "Accept-Language": "es"})
    assert missing.status_code == 404 and missing.json()["detail"] == "no existe el incidente 999"
    cert = app_client.get("/api/v1/assessments/999", headers={**an, "Accept-Language": "es"})
    assert cert.status_code == 404 and cert.json()["code"] == "assessment.not_found"
    assert cert.json()["detail"] == "no existe la autoevaluación 999"


def test_a_concurrent_writer_is_a_409_not_a_500(
    app_client: TestClient, sqlite_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version counter's StaleDataError (a write that lost a race) is the same
    refusal as a stale version, in the caller's language."""
    an = bearer(make_token(sqlite_services, Role.ANALYST))
    inc = app_client.post("/api/v1/incidents", json={"title": "Llamada"}, headers=an).json()

    def lost_race(*args: Any, **kwargs: Any) -> None:
        raise StaleDataError("UPDATE statement on table 'incidents' expected to update 1 row")

    monkeypatch.setattr("incidents.lifecycle.transition", lost_race)
    r = app_client.post(
        f"/api/v1/incidents/{inc['id']}/transitions",
        json={"version": inc["version"], "to": "triaged"},
        headers={**an, "Accept-Language": "es"},
    )
    assert r.status_code == 409 and r.json()["code"] == "incident.changed_meanwhile"
    assert r.json()["detail"] == "el incidente cambió mientras tanto; vuelva a cargarlo"


# --- the console pages ---------------------------------------------------------------


class _Text(HTMLParser):
    """The text a person reads: no tags, attributes, scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> str:
    p = _Text()
    p.feed(html)
    return "\n".join(p.parts)


def untranslated(text: str, lang: str) -> list[str]:
    """Message ids shown as they are; in Spanish, also English catalogue texts (a
    sentence of two words or more that Spanish says otherwise)."""
    es, en = entries("es"), entries("en")
    prefixes = sorted({k.split(".")[0] for k in es}, key=len, reverse=True)
    alternatives = "|".join(re.escape(p) for p in prefixes)
    ids = re.compile(rf"(?<![\w.@/-])(?:{alternatives})\.[a-z0-9_+-]+(?:[./][a-z0-9_+-]+)*")
    found = [m.group(0) for m in ids.finditer(text) if m.group(0) in es or "_" in m.group(0)]
    if lang == "es":
        for key, english in en.items():
            words = english.split()
            if len(words) >= 2 and "{" not in english and english != es[key] and english in text:
                found.append(f"{key}: {english!r}")
    return found


@pytest.fixture
def console(sqlite_services: Services, app_client: TestClient) -> dict[str, Any]:
    """An incident with alerts and an RSIT class, an assessment submitted for review,
    and a token for each kind of console user."""
    h = world(sqlite_services)
    seen(app_client, h, "www.evil.example")
    an = h["analyst"]
    inc = app_client.get("/api/v1/incidents", headers=an).json()["incidents"][0]
    patch = {"version": inc["version"], "rsit_class": "malicious-code", "rsit_type": "c2-server"}
    r = app_client.patch(f"/api/v1/incidents/{inc['id']}", json=patch, headers=an)
    assert r.status_code == 200, r.text
    admin = bearer(make_token(sqlite_services, Role.ADMIN))
    a = fill(app_client, sqlite_services, h["a"], evidence_days=0)
    sent = app_client.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"])
    assert sent.status_code == 200, sent.text
    alert = app_client.get("/api/v1/alerts", headers=an).json()["alerts"][0]["event"]["id"]
    return {"h": h, "admin": admin, "incident": r.json(), "assessment": a["id"], "alert": alert}


def pages(c: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    h, inc, aid = c["h"], c["incident"], c["assessment"]
    staff = [
        "/console/alertas",
        "/console/sensores",
        "/console/fuentes",
        "/console/incidentes",
        "/console/incidentes?status=closed",
        f"/console/incidentes/{inc['id']}",
        "/console/certificacion",
        "/console/revisiones",
        f"/console/revisiones/{aid}",
        f"/console/revisiones/{aid}/decision",  # the decision's preview
        "/console/incidentes/999",  # the error page, for a refusal from the services
        f"/console/alertas/{c['alert']}",
        "/console/buscar?q=www.evil.example",
    ]
    entity = [
        "/console/alertas",
        "/console/autoevaluacion",
        f"/console/incidentes/{inc['id']}",
        f"/console/alertas/{c['alert']}",
        "/console/buscar?q=www.evil.example",
    ]
    return [
        *[(p, h["analyst"]) for p in staff],
        ("/console/sensores", c["admin"]),
        *[(p, h["a"]) for p in entity],
        ("/console/login", {}),
        ("/verificar/no-such-certificate", {}),
    ]


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_no_console_page_shows_a_message_id_or_english_in_spanish(
    app_client: TestClient, console: dict[str, Any], lang: str
) -> None:
    seen_pages = 0
    for path, who in pages(console):
        sep = "&" if "?" in path else "?"
        r = app_client.get(f"{path}{sep}lang={lang}", headers=who)
        assert r.status_code in (200, 404), (path, r.status_code)
        text = visible_text(r.text)
        assert not untranslated(text, lang), (path, untranslated(text, lang))
        seen_pages += 1
    assert seen_pages == len(pages(console))
    page = app_client.get(
        f"/console/incidentes/{console['incident']['id']}?lang={lang}",
        headers=console["h"]["analyst"],
    )
    shown = visible_text(page.text)
    if lang == "es":
        assert "Código dañino / Servidor de mando y control (C2)" in shown
        assert "Rol: analista" in shown
    else:
        assert "Malicious Code / C2 Server" in shown
        assert "Role: analyst" in shown


def test_the_checks_see_an_id_and_english_left_in_a_spanish_page() -> None:
    """The page check is not vacuous: it flags an id and an English sentence."""
    assert untranslated("Estado: inc.state.in_progress", "es") == ["inc.state.in_progress"]
    assert untranslated("Servidor: C2 Server", "es") == [
        "rsit.malicious-code/c2-server: 'C2 Server'"
    ]
    assert untranslated("dominio evil.example en a.gob.bo", "es") == []


def test_a_refused_console_form_shows_the_reason_in_spanish(
    app_client: TestClient, console: dict[str, Any]
) -> None:
    """A stale edit in the Spanish console: the page again, with a Spanish reason."""
    inc, an = console["incident"], console["h"]["analyst"]
    r = app_client.post(
        f"/console/incidentes/{inc['id']}/transicion",
        data={"version": inc["version"] - 1, "to": "triaged"},
        headers=an,
    )
    assert r.status_code == 409
    text = visible_text(r.text)
    # The page tells what happened and that the typed input is kept (the service's
    # own reason, "el incidente N cambió desde la versión V", is for the API).
    assert "Otra persona cambió este incidente mientras usted lo editaba" in text
    assert "changed since" not in text
    closing = app_client.post(
        f"/console/incidentes/{inc['id']}/transicion",
        data={"version": inc["version"], "to": "closed"},
        headers=an,
    )
    assert closing.status_code == 422
    said = visible_text(closing.text)  # the resolutions named as the form names them
    assert "para cerrar hace falta una resolución: una de Verdadero positivo con impacto" in said
    early = app_client.post(
        f"/console/incidentes/{inc['id']}/transicion",
        data={"version": inc["version"], "to": "closed", "resolution": "true_positive_with_impact"},
        headers=an,
    )
    assert early.status_code == 422
    said = visible_text(early.text)
    assert "desde Nuevo la resolución debe ser Falso positivo, Duplicado" in said


def test_vocabulary_parameters_name_real_fields_and_families() -> None:
    """Each refusal parameter shown in words is one its template fills, from a
    family the catalogue has."""
    es = entries("es")
    for code, params in PARAM_LABELS.items():
        assert set(params) <= _fields(_template(code)), code
        for family in params.values():
            assert any(k.startswith(family + ".") for k in es), family


# --- the mails ------------------------------------------------------------------------

MAILS = {
    "incidents/mail": ["notice", "webhook_changed"],
    "certification/mail": ["expiry"],
}


def _mail_context(name: str) -> dict[str, Any]:
    notice = {
        "incident": 7,
        "title": "Indicador domain evil.example",
        "summary": "Tráfico hacia un servidor C2.",
        "priority": "P2",
        "status": "triaged",
        "tlp": "AMBER",
        "pap": "GREEN",
        "rsit": "malicious-code/c2-server",
        "reply_due": "2026-12-03T10:00:00+00:00",
        "url": "https://vigia.example/console/incidentes/7",
    }
    report = {"title": "Shadowserver", "kind": "rdp", "hosts": 2, "csv_name": "h.csv"}
    expiry = SimpleNamespace(certificate="C-1", days_left=25, valid_until=date(2027, 1, 5))
    return {
        "notice": {
            "n": notice,
            "rsit_class": "malicious-code",
            "rsit_type": "c2-server",
            "report": {**report, "advice": "Cierre el puerto 3389."},
        },
        "webhook_changed": {"entity_id": "ent-a", "before": "", "after": "https://x", "actor": "t"},
        "expiry": {"r": expiry},
    }[name]


def test_every_mail_is_a_template_in_spanish_and_english() -> None:
    """Each mail renders in both languages from its template (a field left out fails:
    StrictUndefined), with the taxonomy in the mail's language."""
    for folder, names in MAILS.items():
        for name in names:
            es = render_mail(ROOT / folder, name, "es", **_mail_context(name))
            en = render_mail(ROOT / folder, name, "en", **_mail_context(name))
            assert es.subject and en.subject and es.subject != en.subject, name
            assert "\n" not in es.subject and es.body.endswith("\n"), name
            assert not untranslated(es.subject + "\n" + es.body, "es"), name
    notice = render_mail(ROOT / "incidents/mail", "notice", "es", **_mail_context("notice"))
    assert notice.subject == "[TLP:AMBER] Incidente #7 (P2): Indicador domain evil.example"
    assert "Estado: Clasificado" in notice.body
    assert "Código dañino / Servidor de mando y control (C2)" in notice.body
    assert "Equipos afectados: 2" in notice.body and "Cierre el puerto 3389." in notice.body
    english = render_mail(ROOT / "incidents/mail", "notice", "en", **_mail_context("notice"))
    assert "Status: Triaged" in english.body and "Malicious Code / C2 Server" in english.body
    expiry = render_mail(ROOT / "certification/mail", "expiry", "xx", **_mail_context("expiry"))
    assert expiry.subject == "Certificado C-1: vence en 25 días"  # unknown language: Spanish
    assert "vence el 2027-01-05" in expiry.body
    with pytest.raises(jinja2.UndefinedError):
        render_mail(ROOT / "certification/mail", "expiry", "es")


def test_the_senders_hold_no_mail_wording() -> None:
    """The sentences live in the templates, not in the code that sends them."""
    for path in ("incidents/notify.py", "vigia/scheduler.py", "incidents/reports/intake.py"):
        source = (ROOT / path).read_text()
        for phrase in ("acuse recibo", "vence en", "cambió su webhook", "Equipos afectados"):
            assert phrase not in source, (path, phrase)
    assert (ROOT / "incidents/mail/notice.es.txt").exists()


def test_the_progress_csv_in_spanish_for_the_console_and_codes_for_scripts(
    app_client: TestClient, sqlite_services: Services
) -> None:
    world(sqlite_services)
    staff = bearer(make_token(sqlite_services, Role.ANALYST))
    url = "/api/v1/certification/progress?format=csv"
    codes = app_client.get(url, headers=staff).text.splitlines()
    assert codes[0] == "entity,name,level,state,score,progress,certificate,valid_until"
    assert "ent-a,Entidad A,central,not_started," in codes[1]
    es = app_client.get(f"{url}&lang=es", headers=staff).text.splitlines()
    assert es[0] == "entidad,nombre,nivel,estado,puntaje,avance,certificado,vigente_hasta"
    assert "ent-a,Entidad A,Gobierno central,Sin iniciar," in es[1]
    assert not untranslated("\n".join(es), "es")
    en = app_client.get(f"{url}&lang=en", headers=staff).text.splitlines()
    assert "ent-a,Entidad A,Central government,Not started," in en[1]
