"""A MISP REST API on loopback for sync tests: MISP's documented response shapes,
real PyMISP test events, the filters a sync uses (published, to_ids, timestamp) and
MISP's paging (limit, page)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pymisp
from fastapi import FastAPI, Header, HTTPException, Request, Response

from tests.centre import ServerThread

KEY = "a" * 40


def build_app(
    events: list[dict[str, Any]],
    requests: list[dict[str, Any]],
    sightings: list[dict[str, Any]],
    pushed: dict[str, dict[str, Any]] | None = None,
    sharing_groups: list[dict[str, Any]] | None = None,
    paging: bool = True,
    fail_page: int | None = None,
) -> FastAPI:
    """`paging` False: `limit` and `page` ignored (every event each time), as a MISP
    before paging or a proxy that drops them; `fail_page`: that page is a 500."""
    app = FastAPI()
    pushed = {} if pushed is None else pushed  # events added or edited, by uuid
    groups = sharing_groups or []

    def check(authorization: str | None) -> None:
        if authorization != KEY:
            raise HTTPException(403, {"name": "Authentication failed.", "message": "bad key"})

    @app.get("/servers/getVersion")
    def version(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        check(authorization)
        return {"version": "2.5.0", "pymisp_recommended_version": "2.5.0", "perm_sync": True}

    @app.get("/users/view/me")
    def me(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        check(authorization)
        return {
            "User": {"id": "1", "email": "sync@cert.example", "org_id": "1", "role_id": "1"},
            "Role": {"id": "1", "name": "Sync user", "perm_sync": True},
            "UserSetting": [],
        }

    @app.get("/attributes/describeTypes.json")
    def describe_types(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        check(authorization)  # MISP's own type table, as pymisp ships it
        path = Path(pymisp.__file__).parent / "data" / "describeTypes.json"
        return {"result": json.loads(path.read_text())["result"]}

    @app.post("/sightings/add")
    async def add_sighting(
        request: Request, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        check(authorization)
        body = await request.json()
        sightings.append(body)
        return {
            "Sighting": {
                "id": str(len(sightings)),
                "type": body.get("type", "0"),
                "source": body.get("source", ""),
                "date_sighting": "0",
            }
        }

    @app.get("/sharingGroups/index")
    def sharing_group_index(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        check(authorization)
        return {"response": [{"SharingGroup": g, "Organisation": {}} for g in groups]}

    @app.api_route("/events/view/{event_id}", methods=["GET", "HEAD"])
    def view_event(event_id: str, authorization: str | None = Header(default=None)) -> Any:
        check(authorization)
        if event_id not in pushed:
            raise HTTPException(404, {"name": "Invalid event", "message": "Invalid event"})
        return {"Event": pushed[event_id]}

    @app.post("/events/add")
    async def add_event(
        request: Request, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        check(authorization)
        body = await request.json()
        event = body.get("Event", body)
        if event.get("uuid") in pushed:  # as MISP: an event it holds is edited, not added
            raise HTTPException(403, {"name": "Event already exists", "message": "exists"})
        event["id"] = str(len(pushed) + 1)
        pushed[event["uuid"]] = event
        return {"Event": event}

    @app.post("/events/edit/{event_id}")
    async def edit_event(
        event_id: str, request: Request, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        check(authorization)
        if event_id not in pushed:
            raise HTTPException(404, {"name": "Invalid event", "message": "Invalid event"})
        body = await request.json()
        event = body.get("Event", body)
        event["id"] = pushed[event_id]["id"]
        pushed[event_id] = event
        return {"Event": event}

    @app.post("/events/restSearch")
    async def rest_search(
        request: Request, authorization: str | None = Header(default=None)
    ) -> Response:
        check(authorization)
        query = await request.json()
        requests.append(query)
        chosen = []
        for doc in events:
            event = doc["Event"]
            if query.get("published") is not None and bool(event.get("published")) != bool(
                int(query["published"])
            ):
                continue
            if query.get("timestamp") and int(event["timestamp"]) < int(query["timestamp"]):
                continue
            chosen.append(event)
        if fail_page is not None and int(query.get("page") or 1) == fail_page:
            raise HTTPException(500, {"name": "Internal error", "message": "page failed"})
        if paging and query.get("limit"):  # MISP: `page` 3 of `limit` 100 is events 201-300
            first = (int(query.get("page") or 1) - 1) * int(query["limit"])
            chosen = chosen[first : first + int(query["limit"])]
        out = []
        for chosen_event in chosen:
            event = dict(chosen_event)  # new lists where filtered: the events served stay whole
            if query.get("to_ids") is not None and int(query["to_ids"]):
                event["Attribute"] = [a for a in event.get("Attribute", []) if a.get("to_ids")]
                event["Object"] = [
                    {**obj, "Attribute": [a for a in obj.get("Attribute", []) if a.get("to_ids")]}
                    for obj in event.get("Object", [])
                ]
            out.append({"Event": event})
        # Encoded at once (FastAPI's encoder walks every value: seconds for big pages).
        return Response(orjson.dumps({"response": out}), media_type="application/json")

    return app


class MispOnLoopback(ServerThread):
    def __init__(
        self,
        events: list[dict[str, Any]],
        port: int,
        sharing_groups: list[dict[str, Any]] | None = None,
        paging: bool = True,
        fail_page: int | None = None,
    ) -> None:
        self.events = events
        self.requests: list[dict[str, Any]] = []
        self.sightings: list[dict[str, Any]] = []
        self.pushed: dict[str, dict[str, Any]] = {}
        app = build_app(
            events, self.requests, self.sightings, self.pushed, sharing_groups, paging, fail_page
        )
        super().__init__(app, port)
