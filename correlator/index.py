"""The in-memory indicator index: one lookup per observed value.

Exact values sit in one dict per kind; networks in a longest-prefix trie
(pytricia); a `domain` indicator also matches subdomains (MISP's RPZ
semantics) while a `hostname` matches the exact name.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable

import pytricia

from rules.indicator import Indicator, IndicatorError, canonical_url
from rules.vocab import indicator_types


class IndicatorIndex:
    def __init__(self, indicators: Iterable[Indicator] = ()) -> None:
        types = indicator_types()["types"]
        self._by_kind: dict[str, dict[str, list[Indicator]]] = defaultdict(dict)
        self._nets4 = pytricia.PyTricia(32)
        self._nets6 = pytricia.PyTricia(128)
        self._has_nets = False
        # ECS field -> the indicator types that may match a value seen there
        self._field_types: dict[str, set[str]] = defaultdict(set)
        self._field_kinds: dict[str, set[str]] = defaultdict(set)
        for itype, spec in types.items():
            for f in spec["fields"]:
                self._field_types[f].add(itype)
                self._field_kinds[f].add(spec["kind"])
        self.size = 0
        for ind in indicators:
            self.add(ind)

    def add(self, ind: Indicator) -> None:
        """Index one indicator meant for detection (`to_ids`)."""
        if not ind.to_ids:
            return
        self.size += 1
        if ind.kind == "addr" and "/" in ind.value:
            trie = self._nets6 if ":" in ind.value else self._nets4
            held = trie.get(ind.value)
            if held is None:
                trie[ind.value] = held = []
            held.append(ind)
            self._has_nets = True
            return
        self._by_kind[ind.kind].setdefault(ind.value, []).append(ind)

    def lookup(self, ecs_field: str, value: str) -> list[Indicator]:
        """Indicators that a value seen in `ecs_field` matches."""
        types = self._field_types.get(ecs_field)
        if not types:
            return []
        hits: list[Indicator] = []
        for kind in self._field_kinds[ecs_field]:
            hits.extend(self._lookup_kind(kind, value))
        return [h for h in hits if h.type in types] if hits else hits

    def _lookup_kind(self, kind: str, value: str) -> list[Indicator]:
        table = self._by_kind.get(kind)
        if kind == "addr":
            found = list(table.get(value, ())) if table else []
            if self._has_nets:
                found.extend(self._in_networks(value))
            return found
        if not table:
            return []
        if kind == "hostname":
            return list(table.get(value.rstrip(".").lower(), ()))
        if kind == "domain":
            name = value.rstrip(".").lower()
            found = []
            while name:  # the name itself, then each parent domain
                found.extend(table.get(name, ()))
                name = name.partition(".")[2]
            return found
        if kind == "url":
            try:
                return list(table.get(canonical_url(value), ()))
            except IndicatorError:
                return []
        if kind in ("md5", "sha1", "sha256", "email"):
            return list(table.get(value.lower(), ()))
        return list(table.get(value, ()))

    def _in_networks(self, value: str) -> list[Indicator]:
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return []
        trie = self._nets6 if addr.version == 6 else self._nets4
        found: list[Indicator] = []
        key = trie.get_key(value)
        while key is not None:  # every enclosing network, not only the longest
            found.extend(trie[key])
            key = trie.parent(key)
        return found
