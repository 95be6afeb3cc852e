"""Every answer of the app checked against the OpenAPI document it serves: the
operation found by method and path template, the response by status code (or its
range, or `default`), the body by media type, validated with jsonschema (OpenAPI
3.1 schemas are JSON Schema 2020-12).

tests/conftest.py runs each TestClient response of the suite through `check`."""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

_PARAM = re.compile(r"\{[^}/]+\}")


def _base(media_type: str) -> str:
    return media_type.split(";")[0].strip().lower()


def _covers(documented: str, media_type: str) -> bool:
    """`documented` names this media type, or a range holding it (*/*, text/*)."""
    doc, got = _base(documented), _base(media_type)
    return doc in (got, "*/*") or (doc.endswith("/*") and got.startswith(doc[:-1]))


def _is_json(media_type: str) -> bool:
    base = _base(media_type)
    return base == "application/json" or base.endswith("+json")


@dataclass
class Checker:
    spec: dict[str, Any]
    checked: int = 0  # responses whose body was validated
    _templates: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    _validators: dict[tuple[str, str, str, str], Draft202012Validator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Literal paths before templated ones: /incidents/metrics is not an id; and
        # among those, more literal text first: /assessments/{id}.pdf is not {id}.
        paths = sorted(
            self.spec.get("paths", {}),
            key=lambda p: (p.count("{"), -len(_PARAM.sub("", p)), p),
        )
        for p in paths:
            for method, op in self.spec["paths"][p].items():  # compiled once, up front
                for key, resp in op.get("responses", {}).items():
                    for media, content in resp.get("content", {}).items():
                        if _is_json(media) and content.get("schema"):
                            self._validator(p, method.upper(), key, media, content["schema"])
            regex = "^" + _PARAM.sub("[^/]+", re.escape(p).replace(r"\{", "{").replace(r"\}", "}"))
            self._templates.append((re.compile(regex + "$"), p))

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for regex, template in self._templates:
            if regex.match(path):
                op = self.spec["paths"][template].get(method.lower())
                if op is not None:
                    return template, op
        return None

    def problems(self, response: httpx.Response) -> list[str]:
        """What is wrong with this response by the document (empty: nothing, or the
        route is not in the document: the console's pages, /health's HEAD...)."""
        request = response.request
        found = self.operation(request.method, request.url.path)
        if found is None or request.method == "HEAD":
            return []
        template, op = found
        status = str(response.status_code)
        responses = op.get("responses", {})
        key = next(
            (k for k in (status, f"{status[0]}XX", "default") if k in responses),
            None,
        )
        where = f"{request.method} {template} -> {status}"
        if key is None:
            return [f"{where}: status not documented"] if status.startswith("2") else []
        if not response.content:
            return []
        media = response.headers.get("content-type", "")
        content = responses[key].get("content", {})
        documented = next((m for m in content if _covers(m, media)), None)
        if documented is None:
            return [f"{where}: {media!r} not documented (documented: {sorted(content)})"]
        if not _is_json(media):
            return []
        schema = content[documented].get("schema")
        if not schema:
            return [f"{where}: {documented} has no schema"]
        validator = self._validator(template, request.method, key, documented, schema)
        self.checked += 1
        body = response.json()
        return [
            f"{where}: {'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in list(validator.iter_errors(body))[:5]
        ]

    def _validator(
        self, template: str, method: str, key: str, media: str, schema: dict[str, Any]
    ) -> Draft202012Validator:
        k = (template, method, key, media)
        if k not in self._validators:
            root = {"allOf": [schema], "components": self.spec.get("components", {})}
            self._validators[k] = Draft202012Validator(root)
        return self._validators[k]


_checkers: weakref.WeakKeyDictionary[FastAPI, Checker] = weakref.WeakKeyDictionary()
STATS = {"validated": 0, "responses": 0}


def checker_for(app: FastAPI) -> Checker:
    if app not in _checkers:
        _checkers[app] = Checker(app.openapi())
    return _checkers[app]


def check(app: object, response: httpx.Response) -> None:
    """AssertionError naming each way the response breaks the app's OpenAPI document."""
    if not isinstance(app, FastAPI):
        return
    c = checker_for(app)
    before = c.checked
    problems = c.problems(response)
    STATS["responses"] += 1
    STATS["validated"] += c.checked - before
    assert not problems, "the answer breaks the OpenAPI document:\n" + "\n".join(problems)


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every TestClient request of the test checks its answer (tests/conftest.py)."""
    original = TestClient.request
    original_init = TestClient.__init__

    def init(self: TestClient, app: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, app, *args, **kwargs)
        if isinstance(app, FastAPI):  # the document built now, not during a timed request
            checker_for(app)

    def request(self: TestClient, *args: Any, **kwargs: Any) -> httpx.Response:
        response = original(self, *args, **kwargs)
        check(self.app, response)
        return response

    monkeypatch.setattr(TestClient, "__init__", init)
    monkeypatch.setattr(TestClient, "request", request)
