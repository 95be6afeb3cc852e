"""A change is committed before its answer leaves: the client that reads right after
a 201 or a 303 (a console form's fetch following its redirect) sees what it made,
and a commit that fails is the answer, not a success already sent."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from api.app import create_app
from certification.registry import EntityRow
from core.tokens import Role
from tests.conftest import make_token
from vigia.wiring import Services


def test_the_change_is_committed_before_the_answer_starts(services: Services) -> None:
    token = make_token(services, Role.ADMIN)
    body = b"id,name,level\ngam-orden,GAM Orden,municipal\n"
    seen: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
            # Another connection, as the browser's next request would get.
            with services.db.transaction(write=False) as other:
                seen["there"] = other.scalar(
                    select(EntityRow.id).where(EntityRow.id == "gam-orden")
                )

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/entities/import",
        "raw_path": b"/api/v1/entities/import",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"text/csv"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    asyncio.run(create_app(services)(scope, receive, send))
    assert seen == {"status": 200, "there": "gam-orden"}
