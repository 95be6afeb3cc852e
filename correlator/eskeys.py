"""Match keys: what an observation is stored in Elasticsearch with so that a
retro-hunt finds it by exact `terms`, never by a leading wildcard or a prefix.

A domain indicator matches its subdomains, and an IPv4 network its addresses;
asked as `wildcard *.evil.example` or `prefix 10.1.` per indicator, those
queries walk the terms dictionary once each (a thousand of them took
Elasticsearch's stand-in 22 s for 5 000 documents). Instead each stored
observation carries `vigia.match_keys`: `d:` and every parent domain of each
domain-typed value (itself included), `4:` and the first one, two and three octets of each IPv4
address, and the marker `v:1` (documents stored before these keys lack it, and
the hunt asks for them the old way while any remain). The keys only narrow the
candidates: the Matcher decides, as for live traffic.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from functools import cache
from typing import Any

from rules.indicator import Indicator
from rules.vocab import indicator_types

FIELD = "vigia.match_keys"
MARK = "v:1"


@cache
def _fields() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(domain-typed fields, address fields) from the indicator vocabulary."""
    types = indicator_types()["types"].values()
    domains = sorted({f for t in types if t["kind"] == "domain" for f in t["fields"]})
    addrs = sorted({f for t in types if t["kind"] == "addr" for f in t["fields"]})
    return tuple(domains), tuple(addrs)


def _values(doc: Any, path: list[str]) -> Iterator[str]:
    """Every value at a dotted path, through lists (dns.answers is a list of objects)."""
    if isinstance(doc, list):
        for item in doc:
            yield from _values(item, path)
        return
    if not path:
        if isinstance(doc, str):
            yield doc
        return
    if isinstance(doc, dict) and path[0] in doc:
        yield from _values(doc[path[0]], path[1:])


def match_keys(doc: dict[str, Any]) -> list[str]:
    """The keys an observation document is stored with (sorted, each once)."""
    domains, addrs = _fields()
    keys = {MARK}
    for field in domains:
        for name in _values(doc, field.split(".")):
            labels = name.strip().rstrip(".").lower().split(".")
            keys.update("d:" + ".".join(labels[i:]) for i in range(len(labels)))
    for field in addrs:
        for addr in _values(doc, field.split(".")):
            octets = addr.split(".")
            if len(octets) == 4:
                keys.add("4:")
                keys.update("4:" + "".join(f"{o}." for o in octets[:n]) for n in (1, 2, 3))
    return sorted(keys)


def indicator_key(ind: Indicator, kind: str) -> str | None:
    """The key an indicator finds its candidates by beyond its exact value: a domain's
    subdomains, an IPv4 network's addresses; None for the rest."""
    if kind == "domain":
        return "d:" + ind.value.strip().rstrip(".").lower()
    if kind == "addr" and "/" in ind.value:
        net = ipaddress.ip_network(ind.value, strict=False)
        if net.version == 4:
            octets = str(net.network_address).split(".")[: min(net.prefixlen // 8, 3)]
            return "4:" + "".join(f"{o}." for o in octets)
    return None
