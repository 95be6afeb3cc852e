"""Retro-hunt over the observations held in Elasticsearch, as batched terms queries.

New indicators become, per ECS field where they can match, `terms` clauses of
up to CHUNK values (domains add a suffix `wildcard` for their subdomains,
IPv4 networks a `prefix` on the address text, IPv6 networks a CIDR `term`).
The queries only narrow the candidates: each document found goes through the
same Matcher as live traffic, so the semantics stay the index's. Pages come
by `search_after` under a point in time, so a hunt sees one consistent view.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from core.telemetry import Telemetry
from correlator.eskeys import FIELD, MARK, indicator_key
from correlator.esstore import OBSERVATIONS, EsError, es_errors
from correlator.retrohunt import Stored, sql_pages
from rules.indicator import Indicator
from rules.vocab import indicator_types

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

log = logging.getLogger("vigia.eshunt")

CHUNK = 1000  # clauses per query: far below ES's limits, small enough to page fast
PAGE = 1000
_ADDR_FIELDS = frozenset({"source.ip", "destination.ip"})  # `ip` typed, text in .text


def clauses(indicators: list[Indicator], legacy: bool = False) -> list[dict[str, Any]]:
    """Query clauses that find at least every observation the indicators match: exact
    values as `terms` per field, subdomains and IPv4 networks as `terms` on the
    stored match keys (correlator.eskeys). `legacy`: for documents stored before
    those keys, subdomains as `wildcard` and IPv4 networks as `prefix` instead."""
    types = indicator_types()["types"]
    exact: dict[str, set[str]] = {}
    keys: set[str] = set()
    out: list[dict[str, Any]] = []
    for ind in indicators:
        kind, fields = types[ind.type]["kind"], types[ind.type]["fields"]
        key = indicator_key(ind, kind)
        if key is not None and not legacy:
            keys.add(key)
        for field in fields:
            if kind == "addr" and "/" in ind.value:
                if legacy or key is None:
                    out.append(_network(field, ind.value))
                continue
            values = exact.setdefault(field, set())
            if kind == "url":  # stored canonical (host/path): seen with its scheme
                values.update((f"http://{ind.value}", f"https://{ind.value}"))
            else:
                values.add(ind.value)
            if kind == "domain" and legacy:
                out.append({"wildcard": {field: {"value": f"*.{ind.value}"}}})
    exact[FIELD] = keys
    for field, values in sorted(exact.items()):
        ordered = sorted(values)
        out += [{"terms": {field: ordered[i : i + CHUNK]}} for i in range(0, len(ordered), CHUNK)]
    if legacy:  # only the documents without keys: the others were asked above
        unmarked = {"bool": {"must_not": {"term": {FIELD: MARK}}}}
        out = [{"bool": {"filter": [unmarked, c]}} for c in out]
    return out


def _network(field: str, cidr: str) -> dict[str, Any]:
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version == 6:  # Elasticsearch's `ip` fields answer a CIDR term
        return {"term": {field: str(net)}}
    # IPv4: the octets the prefix fixes, as text; the Matcher then checks containment.
    octets = str(net.network_address).split(".")[: net.prefixlen // 8]
    text = f"{field}.text" if field in _ADDR_FIELDS else field
    if len(octets) == 4:
        return {"term": {text: ".".join(octets)}}
    return {"prefix": {text: "".join(f"{o}." for o in octets)}}


def _unmarked(client: Elasticsearch, since: datetime) -> bool:
    """Whether the hunt's window holds documents stored before the match keys."""
    query = {
        "bool": {
            "filter": [{"range": {"@timestamp": {"gte": since.isoformat()}}}],
            "must_not": {"term": {FIELD: MARK}},
        }
    }
    return bool(client.count(index=OBSERVATIONS, query=query)["count"])


def candidates(
    client: Elasticsearch, indicators: list[Indicator], since: datetime
) -> Iterator[list[dict[str, Any]]]:
    """Pages of observation documents since then that may match; each document once."""
    found = clauses(indicators)
    seen: set[str] = set()
    try:
        if not found or not client.indices.exists(index=OBSERVATIONS):
            return
        # What was stored in the last second is not searchable yet, and the live
        # index did not know these indicators when it came: make it visible.
        client.indices.refresh(index=OBSERVATIONS)
        if _unmarked(client, since):  # stored before the match keys: asked the old way
            found += clauses(indicators, legacy=True)
        for start in range(0, len(found), CHUNK):
            for page in _pages(client, found[start : start + CHUNK], since):
                fresh = [h for h in page if h["_id"] not in seen]
                seen.update(h["_id"] for h in fresh)
                if fresh:
                    yield [h["_source"] for h in fresh]
    except es_errors() as exc:
        raise EsError(f"elasticsearch: {exc}") from None


def _pages(
    client: Elasticsearch, should: list[dict[str, Any]], since: datetime
) -> Iterator[list[dict[str, Any]]]:
    pit = client.open_point_in_time(index=OBSERVATIONS, keep_alive="2m")["id"]
    query = {
        "bool": {
            "filter": [{"range": {"@timestamp": {"gte": since.isoformat()}}}],
            "should": should,
            "minimum_should_match": 1,
        }
    }
    after: list[Any] | None = None
    try:
        while True:
            resp = client.search(
                pit={"id": pit, "keep_alive": "2m"},
                query=query,
                sort=[{"@timestamp": "asc"}, {"_shard_doc": "asc"}],
                size=PAGE,
                search_after=after,
                track_total_hits=False,
            )
            hits = resp["hits"]["hits"]
            if not hits:
                return
            yield hits
            after = hits[-1]["sort"]
            pit = resp.get("pit_id", pit)
    finally:
        client.close_point_in_time(id=pit)


class EsHunt:
    """Where a retro-hunt reads the stored observations: Elasticsearch, or the SQL
    store (which holds the same observations) when the cluster fails."""

    def __init__(self, client: Elasticsearch, telemetry: Telemetry) -> None:
        self.client, self.telemetry = client, telemetry

    def __call__(self, session: Session) -> Stored:
        def pages(indicators: list[Indicator], since: datetime) -> list[list[dict[str, Any]]]:
            try:  # all pages first: a failure halfway must not hunt some twice
                return list(candidates(self.client, indicators, since))
            except EsError as exc:
                self.telemetry.count("es_hunt_failures")
                log.warning("retro-hunt in Elasticsearch failed (%s); hunting in SQL", exc)
                return list(sql_pages(session)(indicators, since))

        return pages
