"""TAXII 2.1 out: taxii2-client, the OASIS client library, against a real centre on
loopback, as an entity, a peer CERT and the CERT's staff; TLP and entity
visibility, added_after and keyset pagination, TAXII errors, STIX validation."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import requests
from stix2validator import ValidationOptions, validate_instance
from taxii2client.v21 import Collection, Server, as_pages

from certification.registry import Registry
from core.clock import utcnow
from core.tokens import Role
from correlator.store import IndicatorStore
from incidents import service
from rules.indicator import Indicator
from tests.centre import Centre, free_port
from tests.conftest import make_token
from vigia.wiring import Services

TAXII = "application/taxii+json;version=2.1"


class Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


def _indicators(services: Services) -> None:
    past = utcnow() - timedelta(days=1)
    with services.db.transaction() as s:
        IndicatorStore.save(
            s,
            [
                Indicator("ip-dst", "192.0.2.1", "feed-a", tlp="clear"),
                Indicator("domain", "green.example", "feed-a", tlp="green"),
                Indicator("url", "green.example/pay", "feed-a", tlp="green"),
                Indicator("domain", "amber.example", "misp", tlp="amber"),
                Indicator("domain", "strict.example", "misp", tlp="amber+strict"),
                Indicator("domain", "red.example", "misp", tlp="red"),
                # Not shared: known good, expired, not for detection.
                Indicator("domain", "good.example", "wl", tlp="green", whitelist=True),
                Indicator("domain", "old.example", "feed-a", tlp="green", expires=past),
                Indicator("domain", "noids.example", "feed-a", tlp="green", to_ids=False),
            ],
        )


def _incident(
    services: Services, entity: str, tlp: str, observables: list[tuple[str, str, str]]
) -> int:
    with services.db.transaction() as s:
        inc = service.open_incident(s, services.policy, "test", title=f"caso {entity}", tlp=tlp)
        service.add_entity(s, inc, entity)
        for type_, value, otlp in observables:
            service.add_observable(s, inc, type_, value, otlp, "analyst")
        return inc.id


@pytest.fixture
def world(services: Services) -> Iterator[tuple[str, dict[str, str]]]:
    with services.db.transaction() as s:
        Registry.add(s, "ent-a", "Entidad A", "central", ["10.1.0.0/16"], [], "test")
        Registry.add(s, "ent-b", "Entidad B", "central", ["10.2.0.0/16"], [], "test")
    _indicators(services)
    # ent-a's: an AMBER incident (a CLEAR observable in it is AMBER), an AMBER+STRICT one,
    # a RED one; ent-b's GREEN one; and a false positive that is not shared.
    _incident(
        services,
        "ent-a",
        "amber",
        [("domain", "a-amber.example", "amber"), ("ip-dst", "198.51.100.7", "clear")],
    )
    _incident(services, "ent-a", "amber+strict", [("sha256", "ab" * 32, "amber+strict")])
    _incident(services, "ent-a", "red", [("domain", "a-red.example", "red")])
    _incident(services, "ent-b", "green", [("url", "phish.example/login", "green")])
    fp = _incident(services, "ent-b", "green", [("domain", "fp.example", "green")])
    with services.db.transaction() as s:
        service.get(s, fp).resolution = "false_positive"
    tokens = {
        "ent-a": make_token(services, Role.ENTITY, "ent-a", "oficial-a"),
        "ent-b": make_token(services, Role.ENTITY, "ent-b", "oficial-b"),
        "peer": make_token(services, Role.PEER, name="cert-vecino"),
        "analyst": make_token(services, Role.ANALYST),
        "sensor": make_token(services, Role.SENSOR),
    }
    with Centre(services, free_port()) as centre:
        yield centre.url, tokens


def _server(url: str, token: str) -> Server:
    return Server(f"{url}/taxii2/", auth=Bearer(token))


def _collections(url: str, token: str) -> dict[str, Collection]:
    root = _server(url, token).api_roots[0]
    return {c.alias: c for c in root.collections}


def _objects(c: Collection, per_request: int = 100, **filters: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for envelope in as_pages(c.get_objects, per_request=per_request, **filters):
        out += envelope.get("objects", [])
    return out


def _values(objects: list[dict[str, Any]]) -> set[str]:
    """The quoted values of the indicators' patterns."""
    return {
        part.split("'")[-2]
        for o in objects
        if o["type"] == "indicator"
        for part in o["pattern"].split(" OR ")
    }


def test_an_entity_lists_and_reads_only_what_it_may(world: tuple[str, dict[str, str]]) -> None:
    url, tokens = world
    server = _server(url, tokens["ent-a"])
    assert server.default is not None and server.api_roots[0].url == f"{url}/taxii2/vigia/"
    found = _collections(url, tokens["ent-a"])
    assert set(found) == {
        "entities-clear",
        "entities-green",
        "entity-ent-a-clear",
        "entity-ent-a-green",
        "entity-ent-a-amber",
        "entity-ent-a-amber-strict",
    }
    assert all(c.can_read and not c.can_write for c in found.values())
    assert _values(_objects(found["entities-clear"])) == {"192.0.2.1"}
    assert _values(_objects(found["entities-green"])) == {
        "green.example",
        "http://green.example/pay",
        "https://green.example/pay",
        "http://phish.example/login",  # ent-b's GREEN incident: the community may know
        "https://phish.example/login",
    }
    # Its own incidents' AMBER and AMBER+STRICT indicators; never a feed's AMBER.
    assert _values(_objects(found["entity-ent-a-amber"])) == {"a-amber.example", "198.51.100.7"}
    assert _values(_objects(found["entity-ent-a-amber-strict"])) == {"ab" * 32}
    assert _values(_objects(found["entity-ent-a-green"])) == set()
    # ent-b sees its own collections, not ent-a's (the same 404 as for none at all).
    theirs = _collections(url, tokens["ent-b"])
    assert "entity-ent-a-amber" not in theirs and "entity-ent-b-amber" in theirs
    r = httpx.get(
        f"{found['entity-ent-a-amber'].url}objects/",
        headers={"Authorization": f"Bearer {tokens['ent-b']}", "Accept": TAXII},
    )
    assert r.status_code == 404 and r.headers["content-type"] == TAXII
    assert r.json()["http_status"] == "404" and "no collection" in r.json()["title"]


def test_a_peer_cert_reads_the_peers_collections(world: tuple[str, dict[str, str]]) -> None:
    url, tokens = world
    found = _collections(url, tokens["peer"])
    assert set(found) == {"peers-clear", "peers-green"}
    green = _values(_objects(found["peers-green"]))
    assert "green.example" in green and "http://phish.example/login" in green
    assert not green & {"amber.example", "a-amber.example", "fp.example", "good.example"}
    mine = _collections(url, tokens["ent-a"])["entity-ent-a-amber"]
    r = httpx.get(
        f"{url}/taxii2/vigia/collections/{mine.id}/objects/",
        headers={"Authorization": f"Bearer {tokens['peer']}"},
    )
    assert r.status_code == 404


def test_red_never_leaves_and_what_leaves_is_valid_stix(world: tuple[str, dict[str, str]]) -> None:
    url, tokens = world
    found = _collections(url, tokens["analyst"])  # staff: every collection
    assert {"peers-green", "entity-ent-b-amber", "entity-ent-a-amber-strict"} <= set(found)
    assert not [a for a in found if "red" in a]
    every: list[dict[str, Any]] = []
    for c in found.values():
        every += _objects(c)
    values = _values(every)
    assert not values & {"red.example", "a-red.example", "strict.example", "amber.example"}
    assert not values & {"good.example", "old.example", "noids.example", "fp.example"}
    for obj in every:
        result = validate_instance(obj, ValidationOptions(strict=False))
        assert result.is_valid, (obj, [str(e) for e in result.errors])
    # Each indicator carries the TLP 2.0 marking of its collection, served beside it.
    amber = _objects(found["entity-ent-a-amber"])
    marking = next(o for o in amber if o["type"] == "marking-definition")
    assert marking["name"] == "TLP:AMBER"
    assert all(
        o["object_marking_refs"] == [marking["id"]] for o in amber if o["type"] == "indicator"
    )


def test_added_after_and_pages_by_keyset(
    world: tuple[str, dict[str, str]], services: Services
) -> None:
    url, tokens = world
    with services.db.transaction() as s:  # 250 at one instant: ties broken by id
        IndicatorStore.save(
            s,
            [Indicator("ip-dst", f"203.0.113.{n % 250}", f"f{n}", tlp="green") for n in range(250)],
        )
    green = _collections(url, tokens["peer"])["peers-green"]
    manifest: list[dict[str, Any]] = []
    sizes = []
    for envelope in as_pages(green.get_manifest, per_request=40):
        sizes.append(len(envelope.get("objects", [])))
        manifest += envelope["objects"]
    # identity + marking, 2 feed GREEN, 250 new, 1 incident GREEN
    assert len(manifest) == 255 and sizes == [40] * 6 + [15]
    ids = [m["id"] for m in manifest]
    assert len(set(ids)) == 255
    added = [m["date_added"] for m in manifest]
    assert added == sorted(added)
    assert {m["media_type"] for m in manifest} == {"application/stix+json;version=2.1"}
    objects = _objects(green, per_request=40)
    assert [o["id"] for o in objects] == ids
    # The headers of one page, and `next` resuming after its last object.
    h = {"Authorization": f"Bearer {tokens['peer']}", "Accept": TAXII}
    page = httpx.get(f"{green.url}objects/", params={"limit": 3}, headers=h)
    assert page.headers["content-type"] == TAXII
    body = page.json()
    assert body["more"] is True and len(body["objects"]) == 3
    assert page.headers["X-TAXII-Date-Added-First"] == added[0]
    assert page.headers["X-TAXII-Date-Added-Last"] == added[2]
    more = httpx.get(f"{green.url}objects/", params={"limit": 2, "next": body["next"]}, headers=h)
    assert [o["id"] for o in more.json()["objects"]] == ids[3:5]
    # added_after: only what came after that instant.
    last = added[-1]
    with services.db.transaction() as s:
        IndicatorStore.save(s, [Indicator("domain", "late.example", "feed-b", tlp="green")])
    late = green.get_objects(added_after=last)
    assert _values(late["objects"]) == {"late.example"} and late["more"] is False
    assert green.get_objects(added_after=utcnow() + timedelta(hours=1)) == {"more": False}


def test_refusals_are_taxii_error_messages(world: tuple[str, dict[str, str]]) -> None:
    url, tokens = world
    base = f"{url}/taxii2/vigia/collections/"
    peers = _collections(url, tokens["peer"])["peers-clear"].id
    h = {"Authorization": f"Bearer {tokens['peer']}"}

    def error(path: str, status: int, **kw: Any) -> str:
        r = httpx.request("POST" if "json" in kw else "GET", path, **kw)
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == TAXII
        body = r.json()
        assert body["http_status"] == str(status)
        return str(body["title"])

    assert "bearer" in error(f"{url}/taxii2/", 401)
    assert error(f"{url}/taxii2/", 403, headers={"Authorization": f"Bearer {tokens['sensor']}"})
    assert "taxii+json" in error(f"{url}/taxii2/", 406, headers={**h, "Accept": "application/json"})
    assert "next" in error(f"{base}{peers}/objects/", 400, params={"next": "!!"}, headers=h)
    assert "added_after" in error(
        f"{base}{peers}/objects/", 400, params={"added_after": "yesterday"}, headers=h
    )
    assert "limit" in error(f"{base}{peers}/objects/", 400, params={"limit": 0}, headers=h)
    # Well-formed but out of range: refused, not a database error.
    forged = base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00", 1, 2**70]).encode())
    assert "next" in error(
        f"{base}{peers}/manifest/", 400, params={"next": forged.decode()}, headers=h
    )
    assert "added_after" in error(
        f"{base}{peers}/objects/",
        400,
        params={"added_after": "0001-01-01T00:00:00+01:00"},
        headers=h,
    )
    assert "no TAXII resource" in error(f"{url}/taxii2/vigia/status/1/", 404, headers=h)
    assert "read only" in error(f"{base}{peers}/objects/", 405, json={"objects": []}, headers=h)
    slashless = httpx.get(f"{url}/taxii2/vigia", headers=h, follow_redirects=True)
    assert slashless.json()["versions"] == [TAXII]  # sent on to /taxii2/vigia/
    ok = httpx.get(f"{base}{peers}/objects/", params={"limit": 5000}, headers=h)
    assert ok.status_code == 200 and json.loads(ok.text)["more"] is False  # capped, not refused


def test_a_deep_page_is_an_index_range_not_a_sort(services: Services) -> None:
    """Both sources are read in keyset order from their indexes, LIMIT rows at a
    time: a page deep in a million-row collection reads what the first page reads
    (bench/taxii_pages.py times it on 1 M)."""
    from sqlalchemy import select

    from correlator.rows import IndicatorRow
    from incidents import taxii

    with services.db.transaction() as s:
        IndicatorStore.save(
            s,
            [
                Indicator("ip-dst", f"10.9.{n >> 8}.{n & 255}", "f", tlp="green")
                for n in range(2_000)
            ],
        )
    _incident(services, "ent-x", "green", [("domain", "x.example", "green")])
    with services.db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    green = next(c for c in taxii.collections(taxii.Reader(peer=True)) if c.alias == "peers-green")
    with services.db.transaction(write=False) as s:
        added, rid = s.execute(
            select(IndicatorRow.loaded_at, IndicatorRow.id)
            .order_by(IndicatorRow.id)
            .offset(1_000)
            .limit(1)
        ).one()
    cursor = taxii.Key(added, taxii.INDICATORS, rid)
    queries = {
        "ix_indicators_tlp_loaded": taxii._indicator_rows(green, cursor, None, utcnow(), 101),
        "ix_incident_observables_added": taxii._observable_rows(green, cursor, None, 101),
    }
    for index, q in queries.items():
        with services.db.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # SQLite plans without the values.
                sql = str(q.compile(conn, compile_kwargs={"render_postcompile": True}))
                rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (None,) * sql.count("?"))
                plan = " | ".join(str(r[-1]) for r in rows)
                assert index in plan and "TEMP B-TREE" not in plan, plan
            elif index == "ix_indicators_tlp_loaded":  # PostgreSQL plans by size: 2 000 rows
                sql = q.compile(conn, compile_kwargs={"literal_binds": True})
                plan = " | ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
                assert f"Index Scan using {index}" in plan and "Sort" not in plan, plan
    # And the page itself: 100 objects after the cursor, in order, more to come.
    with services.db.transaction(write=False) as s:
        p = taxii.page(s, green, "CSIRT", limit=100, cursor=cursor, now=utcnow())
    assert len(p.entries) == 100 and p.more and p.entries[0].key.rid == rid + 1
