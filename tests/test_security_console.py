"""Issue 13, findings 3, 11 and 12: what a browser and a guesser can do to the console.

3: stored XSS through data embedded in a page (JSON in <script>), |safe in templates,
   inline script, and the headers that keep a slip from running (CSP and friends).
11: console sessions (random, server-side, expiring, revoked), CSRF on every form.
12: brute force against logins and bearer checks, throttled and audited.
The browser half of 3 (no script runs, no CSP violation, charts drawn) is in
tests/test_console_browser.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.websec import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from core import audit
from core.clock import utcnow
from core.sessions import ConsoleSessionRow
from core.tokens import Role
from tests.conftest import bearer, make_token
from tests.console import console_login, csrf_of
from vigia.wiring import Services

TEMPLATES = Path(__file__).parent.parent / "api" / "templates"
XSS_NAME = "</script><img src=x onerror=alert(2)>"
CSRF_REFUSED = "El formulario venció"


# -- finding 3: XSS ----------------------------------------------------------


class _Scripts(HTMLParser):
    """The <script> elements of a page: their attributes and their text."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.imgs = 0
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._open = dict(attrs)
            self.scripts.append((self._open, ""))
        elif tag == "img":
            self.imgs += 1

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._open = None


def test_an_entity_name_with_markup_stays_data_on_the_certification_dashboard(
    client: TestClient, services: Services
) -> None:
    admin = bearer(make_token(services, Role.ADMIN))
    r = client.post(
        "/api/v1/entities",
        json={"id": "xss-test", "name": XSS_NAME, "level": "municipal"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    page = client.get("/console/certificacion", headers=admin)
    assert page.status_code == 200
    assert "</script><img" not in page.text  # never raw in the page
    parsed = _Scripts()
    parsed.feed(page.text)
    assert parsed.imgs == 0  # the browser's parser makes no <img> of it
    data = [text for attrs, text in parsed.scripts if attrs.get("type") == "application/json"]
    assert len(data) == 1
    progress = json.loads(data[0])  # and the script still gets the name, exactly
    assert XSS_NAME in [c["name"] for c in progress["closest"]]
    # The closest-entities table shows it escaped, as text.
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page.text


# Each remaining |safe (or autoescape off, or Markup) in a template needs a line
# here saying why its value cannot carry markup from a user.
SAFE_ALLOWED: dict[tuple[str, str], str] = {}


def test_every_unescaped_output_in_the_templates_is_justified() -> None:
    found = set()
    for path in sorted(TEMPLATES.glob("*.html")):
        text = path.read_text()
        for m in re.finditer(r"\{\{[^}]*\|\s*safe\b[^}]*\}\}|\{%-?\s*autoescape\s+false", text):
            found.add((path.name, m.group(0)))
        assert "Markup(" not in text, path.name
    unexplained = found - set(SAFE_ALLOWED)
    assert not unexplained, f"|safe without a reason in SAFE_ALLOWED: {sorted(unexplained)}"
    stale = set(SAFE_ALLOWED) - found
    assert not stale, f"SAFE_ALLOWED lists uses that are gone: {sorted(stale)}"


def test_no_template_has_inline_script_handlers_or_style() -> None:
    """The CSP allows no inline script or style, so none may be written: scripts are
    files under /static, data reaches them as JSON (type=application/json)."""
    for path in sorted(TEMPLATES.glob("*.html")):
        text = path.read_text()
        for m in re.finditer(r"<script\b([^>]*)>", text):
            attrs = m.group(1)
            assert 'src="/static/' in attrs or 'type="application/json"' in attrs, (
                path.name,
                m.group(0),
            )
        assert not re.search(r"\son[a-z]+\s*=", text), path.name  # onclick=, onload=...
        assert "javascript:" not in text.lower(), path.name
        assert not re.search(r"\sstyle\s*=|<style\b", text), path.name


def _csp(headers: Any) -> dict[str, str]:
    policy = headers["content-security-policy"]
    return {d.split()[0]: d.strip() for d in policy.split(";") if d.strip()}


@pytest.mark.parametrize("path", ["/console/login", "/health", "/static/vigia.css"])
def test_security_headers_on_pages_json_and_static_files(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    csp = _csp(r.headers)
    assert csp["script-src"] == "script-src 'self'"  # no inline, no eval
    assert csp["style-src"] == "style-src 'self'"
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["object-src" if "object-src" in csp else "default-src"].endswith("'none'")
    assert "unsafe" not in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["x-frame-options"] == "DENY"
    if path.startswith("/console/"):
        assert r.headers["cache-control"] == "no-store"


def test_an_api_refusal_carries_the_headers_too(client: TestClient) -> None:
    r = client.get("/api/v1/alerts")
    assert r.status_code == 401
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


# -- finding 11: sessions ----------------------------------------------------


def _session_cookie(r: Any) -> str:
    cookie = r.headers["set-cookie"]
    m = re.search(rf"{SESSION_COOKIE}=([^;]+)", cookie)
    assert m, cookie
    return m.group(1)


def test_the_cookie_is_a_random_session_id_and_only_its_hash_is_stored(
    client: TestClient, services: Services
) -> None:
    token = make_token(services, Role.ANALYST)
    r = console_login(client, token)
    assert r.status_code == 303
    sid = _session_cookie(r)
    assert token not in r.headers["set-cookie"] and sid != token
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    with services.db.transaction(write=False) as s:
        rows = s.execute(select(ConsoleSessionRow)).scalars().all()
    assert [row.digest for row in rows] == [hashlib.sha256(sid.encode()).hexdigest()]
    assert client.get("/console/alertas").status_code == 200
    # The token itself in a cookie (how the console used to work) opens nothing.
    client.cookies.clear()
    client.cookies.set("vigia_token", token)
    assert client.get("/console/alertas").status_code == 401


def test_logout_ends_the_session_on_the_server(client: TestClient, services: Services) -> None:
    r = console_login(client, make_token(services, Role.ANALYST))
    sid = _session_cookie(r)
    page = client.get("/console/alertas")
    out = client.post("/console/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.clear()
    # A copy of the cookie kept from before the logout (stolen, or a shared machine).
    client.cookies.set(SESSION_COOKIE, sid)
    assert client.get("/console/alertas").status_code == 401


def test_logging_in_again_ends_the_earlier_session(client: TestClient, services: Services) -> None:
    first = _session_cookie(console_login(client, make_token(services, Role.ANALYST)))
    second = _session_cookie(console_login(client, make_token(services, Role.AUDITOR)))
    assert first != second  # a new id at each login: a planted id is never adopted
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, first)
    assert client.get("/console/alertas").status_code == 401
    client.cookies.set(SESSION_COOKIE, second)
    assert client.get("/console/alertas").status_code == 200


def test_revoking_the_token_ends_its_sessions(client: TestClient, services: Services) -> None:
    token = make_token(services, Role.ANALYST)
    console_login(client, token)
    assert client.get("/console/alertas").status_code == 200
    with services.db.transaction() as s:
        principal = services.tokens.authenticate(s, token)
        assert principal is not None
        services.tokens.revoke(s, principal.token_id, "test")
    assert client.get("/console/alertas").status_code == 401


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """The time the server sees, moved by the test."""
    now = [utcnow()]
    for where in ("api.deps.utcnow", "api.routers.console.utcnow"):
        monkeypatch.setattr(where, lambda: now[0], raising=False)
    yield now


def test_sessions_end_when_idle_and_at_their_absolute_limit(
    client: TestClient, services: Services, clock: list[datetime]
) -> None:
    token = make_token(services, Role.ANALYST)
    console_login(client, token)
    clock[0] += timedelta(minutes=31)  # idle past VIGIA_CONSOLE_IDLE_MINUTES (30)
    assert client.get("/console/alertas").status_code == 401
    console_login(client, token)
    for _ in range(12 * 3):  # used every 20 minutes: never idle ...
        assert client.get("/console/alertas").status_code == 200
        clock[0] += timedelta(minutes=20)
    clock[0] += timedelta(minutes=1)  # ... but never past 12 hours either
    assert client.get("/console/alertas").status_code == 401


def _routes(items: list[Any]) -> Iterator[APIRoute]:
    for r in items:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "original_router"):  # an included router, resolved lazily
            yield from _routes(r.original_router.routes)


def _console_posts(app: Any) -> list[str]:
    return sorted(  # logout last: it ends the session the others run on
        (
            r.path
            for r in _routes(app.routes)
            if "POST" in r.methods and r.path.startswith("/console/") and r.path != "/console/login"
        ),
        key=lambda p: (p == "/console/logout", p),
    )


def test_every_console_post_needs_the_sessions_csrf_token(
    client: TestClient, services: Services
) -> None:
    from certification.registry import Registry

    with services.db.transaction() as s:
        Registry.add(s, "ent-a", "Entidad A", "central", [], [], "test")
    admin = TestClient(client.app)
    entity = TestClient(client.app)
    console_login(admin, make_token(services, Role.ADMIN))
    console_login(entity, make_token(services, Role.ENTITY, "ent-a"))
    posts = _console_posts(client.app)
    assert len(posts) >= 14  # every form of the console, found from the routes
    for path in posts:
        url = re.sub(r"\{[^}]+\}", "999", path)
        for browser in (admin, entity):
            good = csrf_of(browser.get("/console/alertas").text)
            altered = good[:-1] + ("B" if good.endswith("A") else "A")  # one character off
            for data in ({}, {"csrf": "x" * 43}, {"csrf": altered}):
                r = browser.post(url, data=data, follow_redirects=False)
                assert r.status_code == 403 and CSRF_REFUSED in r.text, (path, data)
            r = browser.post(url, data={"csrf": good}, follow_redirects=False)
            assert CSRF_REFUSED not in r.text, path  # past the check (then 404, 403 role...)


def test_a_cross_site_post_with_the_cookie_writes_no_note(
    client: TestClient, services: Services
) -> None:
    an = bearer(make_token(services, Role.ANALYST))
    inc = client.post("/api/v1/incidents", json={"title": "objetivo"}, headers=an).json()
    console_login(client, make_token(services, Role.ADMIN))
    url = f"/console/incidentes/{inc['id']}/nota"
    forged = client.post(
        url,
        data={"body": "escrita por otro sitio", "tlp": "green"},
        headers={"Origin": "https://atacante.example"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    page = client.get(f"/console/incidentes/{inc['id']}")
    assert "escrita por otro sitio" not in page.text
    ok = client.post(url, data={"body": "escrita aquí", "tlp": "green", "csrf": csrf_of(page.text)})
    assert ok.status_code == 200 and "escrita aquí" in ok.text


def test_a_session_cookie_does_not_write_through_the_api(
    client: TestClient, services: Services
) -> None:
    """The API's writes take the bearer header only (no CSRF token there); a session
    cookie still reads (the console links evidence and CSV downloads)."""
    console_login(client, make_token(services, Role.ANALYST))
    assert client.get("/api/v1/alerts").status_code == 200
    r = client.post("/api/v1/incidents", json={"title": "por cookie"})
    assert r.status_code == 401


def test_the_login_form_needs_its_signed_csrf_token(client: TestClient, services: Services) -> None:
    token = make_token(services, Role.ANALYST)
    form = client.get("/console/login")
    value = csrf_of(form.text)
    assert client.cookies.get(LOGIN_CSRF_COOKIE) == value
    no_field = client.post("/console/login", data={"token": token}, follow_redirects=False)
    assert no_field.status_code == 403 and SESSION_COOKIE not in no_field.headers.get(
        "set-cookie", ""
    )
    client.cookies.clear()  # a field without its cookie: a form posted from elsewhere
    r = client.post("/console/login", data={"token": token, "csrf": value}, follow_redirects=False)
    assert r.status_code == 403
    forged = "abc.def"  # cookie and field agree, but the cookie is not signed by the server
    client.cookies.set(LOGIN_CSRF_COOKIE, forged)
    r = client.post("/console/login", data={"token": token, "csrf": forged}, follow_redirects=False)
    assert r.status_code == 403
    client.cookies.clear()
    assert console_login(client, token).status_code == 303


def test_cookies_are_secure_over_https_and_behind_a_trusted_proxy_only(
    services: Services,
) -> None:
    token = make_token(services, Role.ANALYST)
    over_https = TestClient(create_app(services), base_url="https://vigia.example")
    r = console_login(over_https, token)
    assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()
    assert "secure" in over_https.get("/console/login").headers["set-cookie"].lower()
    # Plain HTTP claiming to have been HTTPS: not believed unless the proxy is trusted.
    claims = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9"}
    plain = TestClient(create_app(services), headers=claims)
    assert "secure" not in console_login(plain, token).headers["set-cookie"].lower()
    services.settings.trusted_proxies = "testclient"  # the proxy's own address
    proxied = TestClient(create_app(services), headers=claims)
    assert "secure" in console_login(proxied, token).headers["set-cookie"].lower()


# -- finding 12: brute force -------------------------------------------------


def _lockouts(services: Services) -> list[audit.AuditRecord]:
    with services.db.transaction(write=False) as s:
        q = select(audit.AuditRecord).where(audit.AuditRecord.action == "auth.lockout")
        return list(s.execute(q).scalars())


def test_failed_logins_lock_the_address_out_for_a_while(
    services: Services, clock: list[datetime]
) -> None:
    services.settings.auth_fail_limit = 5
    app = create_app(services)
    guesser = TestClient(app, client=("203.0.113.7", 40000))
    token = make_token(services, Role.ANALYST)
    colleague = TestClient(app, client=("203.0.113.7", 40001))  # same NAT, logged in before
    assert console_login(colleague, token).status_code == 303
    for _ in range(10):  # no token at all is not a guess
        assert guesser.get("/api/v1/alerts").status_code == 401
    for n in range(5):
        r = console_login(guesser, "vga_" + secrets.token_urlsafe(32))  # each its own prefix
        assert r.status_code == 401, n
    r = console_login(guesser, token)  # even the right token, from there, waits
    assert r.status_code == 429 and "Demasiados intentos" in r.text
    assert 0 < int(r.headers["retry-after"]) <= services.settings.auth_lockout_s
    api = guesser.get("/api/v1/alerts", headers=bearer(token))
    assert api.status_code == 429 and int(api.headers["retry-after"]) > 0
    assert colleague.get("/console/alertas").status_code == 200  # a session still works
    # Someone else, from another address, is not held up.
    other = TestClient(app, client=("198.51.100.20", 40000))
    assert other.get("/api/v1/alerts", headers=bearer(token)).status_code == 200
    assert console_login(other, token).status_code == 303
    # Many more tries during the lockout: still one audit record, naming the address.
    for _ in range(20):
        assert guesser.get("/api/v1/alerts", headers=bearer("vga_more")).status_code == 429
    (record,) = _lockouts(services)
    assert (record.object_type, record.object_id) == ("address", "203.0.113.7")
    assert record.actor == "system:throttle" and record.detail["failures"] == 5
    clock[0] += timedelta(seconds=services.settings.auth_lockout_s + 1)  # it passes
    assert guesser.get("/api/v1/alerts", headers=bearer(token)).status_code == 200
    with services.db.transaction(write=False) as s:
        assert audit.verify(s).ok


def test_guesses_at_one_token_from_many_addresses_lock_its_prefix(
    services: Services,
) -> None:
    services.settings.auth_fail_limit = 5
    app = create_app(services)
    stem = "vga_Abcd1234"  # a prefix someone saw, guessing the rest from everywhere
    for n in range(5):
        c = TestClient(app, client=(f"192.0.2.{n + 1}", 40000))
        assert c.get("/api/v1/alerts", headers=bearer(f"{stem}guess{n}")).status_code == 401
    fresh = TestClient(app, client=("192.0.2.200", 40000))
    r = fresh.get("/api/v1/alerts", headers=bearer(f"{stem}guess-next"))
    assert r.status_code == 429 and "retry-after" in r.headers
    assert fresh.get("/api/v1/alerts", headers=bearer("vga_Zzzz9999other")).status_code == 401
    assert [(a.object_type, a.object_id) for a in _lockouts(services)] == [("token_prefix", stem)]


def test_an_ipv6_client_counts_as_its_slash_64(services: Services) -> None:
    services.settings.auth_fail_limit = 3
    app = create_app(services)
    for n in range(3):  # a new address of the same /64 for each guess
        c = TestClient(app, client=(f"2001:db8:1:2::{n + 1}", 40000))
        guess = bearer("vga_" + secrets.token_urlsafe(32))
        assert c.get("/api/v1/alerts", headers=guess).status_code == 401
    hopper = TestClient(app, client=("2001:db8:1:2:ffff::9", 40000))
    assert hopper.get("/api/v1/alerts", headers=bearer("vga_x")).status_code == 429
    neighbour = TestClient(app, client=("2001:db8:1:3::1", 40000))  # the next /64
    assert neighbour.get("/api/v1/alerts", headers=bearer("vga_y")).status_code == 401
    assert [a.object_id for a in _lockouts(services)] == ["2001:db8:1:2::/64"]


def test_stale_counts_are_forgotten(services: Services, clock: list[datetime]) -> None:
    """Random guesses leave a row per prefix; rows past their window go away."""
    from core.throttle import ThrottleRow

    app = create_app(services)
    for n in range(6):
        c = TestClient(app, client=(f"192.0.2.{n + 1}", 40000))
        guess = bearer("vga_" + secrets.token_urlsafe(32))
        assert c.get("/api/v1/alerts", headers=guess).status_code == 401
    with services.db.transaction(write=False) as s:
        assert s.execute(select(func.count()).select_from(ThrottleRow)).scalar_one() == 12
    clock[0] += timedelta(seconds=services.settings.auth_fail_window_s + 1)
    c = TestClient(app, client=("192.0.2.99", 40000))
    assert c.get("/api/v1/alerts", headers=bearer("vga_late")).status_code == 401
    with services.db.transaction(write=False) as s:
        keys = set(s.execute(select(ThrottleRow.key)).scalars())
    assert keys == {"addr:192.0.2.99", "prefix:vga_late"}


def test_replicas_share_the_count(services: Services, tmp_path: Path) -> None:
    """Two `vigia serve` processes on one database: failures spread over both add up."""
    from core.settings import load_settings
    from vigia.wiring import build

    services.settings.auth_fail_limit = 4
    second = build(
        load_settings(
            data_dir=services.settings.data_dir,
            database_url=services.settings.database_url,
            auth_fail_limit=4,
        ),
        migrate_schema=False,
    )
    try:
        apps = [create_app(services), create_app(second)]
        for n in range(4):
            c = TestClient(apps[n % 2], client=("203.0.113.50", 40000))
            assert c.get("/api/v1/alerts", headers=bearer(f"vga_r{n}")).status_code == 401
        for app in apps:
            c = TestClient(app, client=("203.0.113.50", 40000))
            assert c.get("/api/v1/alerts", headers=bearer("vga_again")).status_code == 429
    finally:
        second.close()
    with services.db.transaction(write=False) as s:
        n = s.execute(
            select(func.count()).where(audit.AuditRecord.action == "auth.lockout")
        ).scalar_one()
    assert n == 1
