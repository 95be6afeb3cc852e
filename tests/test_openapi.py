"""The typed API (issue 14): every route documents its answer, the suite's answers
keep to the document (tests/openapi_check.py, run on every TestClient request by
tests/conftest.py), routers import no router, and the interactive documentation is
served to token holders only, from local files, under the strict CSP."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.tokens import Role
from tests.conftest import bearer, make_token
from tests.console import console_login
from tests.openapi_check import Checker
from vigia.wiring import Services

API = Path(__file__).resolve().parent.parent / "api"


@pytest.fixture
def app_client(sqlite_services: Services) -> TestClient:
    return TestClient(create_app(sqlite_services))


@pytest.fixture
def spec(app_client: TestClient, sqlite_services: Services) -> dict[str, Any]:
    token = make_token(sqlite_services, Role.AUDITOR)
    r = app_client.get("/api/openapi.json", headers=bearer(token))
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def test_every_operation_documents_its_answer_and_its_refusals(spec: dict[str, Any]) -> None:
    """A 2xx with a schema for each media type it answers in (a model for JSON: an
    object described field by field, not `{}`), and a documented refusal."""
    bare = []
    operations = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            operations += 1
            ok = {c: r for c, r in op["responses"].items() if c.startswith("2")}
            content = [
                (c, m, v.get("schema"))
                for c, r in ok.items()
                for m, v in r.get("content", {}).items()
            ]
            if list(ok) == ["204"] and not content:
                continue  # no body, documented as such
            for code, media, schema in content:
                described = schema and (
                    "$ref" in schema or schema.get("type") in ("array", "string")
                )
                if not described:
                    bare.append(f"{method.upper()} {path} {code} {media}: {schema}")
            if not content:
                bare.append(f"{method.upper()} {path}: no 2xx content")
            if "default" not in op["responses"]:
                bare.append(f"{method.upper()} {path}: refusals undocumented")
    assert operations > 55
    assert not bare, "\n".join(bare)


def test_the_document_names_the_bearer_scheme_and_the_open_operations(
    spec: dict[str, Any],
) -> None:
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearer": []}]
    open_ops = {
        (m, p)
        for p, ops in spec["paths"].items()
        for m, op in ops.items()
        if op.get("security") == []
    }
    assert open_ops == {
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/api/v1/public/certificates/{cert_id}"),
    }


def test_the_checker_refuses_an_answer_that_breaks_the_document(spec: dict[str, Any]) -> None:
    """The suite-wide check is not vacuous: a wrong field type, a missing field, an
    undocumented media type and an undocumented success are each reported."""
    c = Checker(spec)

    def answer(
        method: str, path: str, status: int, body: Any, ctype: str = "application/json"
    ) -> list[str]:
        req = httpx.Request(method, f"http://test{path}")
        resp = httpx.Response(status, json=body, request=req)
        resp.headers["content-type"] = ctype
        return c.problems(resp)

    good = {"alerts": [], "next_cursor": None}
    assert answer("GET", "/api/v1/alerts", 200, good) == []
    assert answer("GET", "/api/v1/alerts", 200, {"alerts": 1, "next_cursor": None})
    assert answer("GET", "/api/v1/alerts", 200, {"alerts": []})  # next_cursor missing
    assert answer("GET", "/api/v1/alerts", 200, good, "text/html")
    assert answer("GET", "/api/v1/incidents/metrics", 200, {"overall": {}})  # a literal path
    assert answer("GET", "/api/v1/incidents/7", 404, {"detail": "no incident 7"}) == []
    assert answer("GET", "/api/v1/incidents/7", 404, {"reason": "x"})  # refusals have a shape
    assert answer("DELETE", "/api/v1/tokens/x", 200, {})  # a 200 where 204 is documented
    assert (
        answer(
            "GET",
            "/taxii2/",
            401,
            {"title": "no", "http_status": "401"},
            "application/taxii+json;version=2.1",
        )
        == []
    )


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_no_router_imports_a_router() -> None:
    """Routers import services, schemas and dependencies; only the application
    (api/app.py) puts the routers together."""
    offenders = {}
    for path in sorted(API.rglob("*.py")):
        if path == API / "app.py":
            continue
        routers = {m for m in _imports(path) if m == "api.routers" or m.startswith("api.routers.")}
        if routers:
            offenders[str(path.relative_to(API.parent))] = sorted(routers)
    assert not offenders
    assert len(list((API / "routers").glob("*.py"))) > 15  # the walk saw the routers


def test_no_handler_queries_the_database_itself() -> None:
    """Queries live in the services: no router builds a statement (imports
    `sqlalchemy` beyond the Session type) or runs one on the session."""
    for path in sorted((API / "routers").glob("*.py")):
        found = _imports(path)
        statements = {
            m for m in found if m.startswith("sqlalchemy") and not m.startswith("sqlalchemy.orm")
        }
        runs = re.findall(r"session\.(?:get|execute|scalars?|query)\(", path.read_text())
        assert not statements and not runs, (path.name, statements, runs)


def test_api_docs_for_token_holders_from_local_files_without_inline_script(
    app_client: TestClient, sqlite_services: Services
) -> None:
    page = app_client.get("/api/docs", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/console/login"
    assert app_client.get("/api/openapi.json").status_code == 401
    token = make_token(sqlite_services, Role.ANALYST)
    page = app_client.get("/api/docs", headers=bearer(token))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert 'data-schema="/api/openapi.json"' in page.text
    assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', page.text))  # no CDN
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        got = app_client.get(asset)
        assert got.status_code == 200 and len(got.content) > 100, asset
    # A person logged in to the console reads it with the session cookie.
    app_client.cookies.clear()
    console_login(app_client, token)
    assert app_client.get("/api/docs").status_code == 200
    assert app_client.get("/api/openapi.json").status_code == 200
