"""Zeek's intel whitelisting, as the index applies it to its hits.

A value some source marks whitelisted (`meta.whitelist T`) is known good: a
hit on it is dropped, whichever indicator (of any type, from any source)
matched. As Zeek's `frameworks/intel/whitelist`, which drops a match when any
item for the seen value is whitelisted. Consulted only for hits: a batch with
none never reaches it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytricia

from core.telemetry import Telemetry


@dataclass
class Suppressed:
    """Hits that did not count, and why: for `vigia scan`'s summary and /metrics."""

    by_whitelist: Counter[str] = field(default_factory=Counter)  # whitelisting source -> hits
    outside_if_in: int = 0  # hits in a place the indicator's meta.if_in leaves out

    def merge(self, other: Suppressed) -> None:
        self.by_whitelist.update(other.by_whitelist)
        self.outside_if_in += other.outside_if_in

    def count_into(self, telemetry: Telemetry) -> None:
        """Into /metrics: vigia_hits_whitelisted{source}, vigia_hits_outside_if_in."""
        for source, n in self.by_whitelist.items():
            telemetry.count_by("hits_whitelisted", "source", source, n)
        if self.outside_if_in:
            telemetry.count("hits_outside_if_in", self.outside_if_in)


class Whitelist:
    """Whitelisted values, each with who whitelisted it ((type, provider) pairs)."""

    def __init__(self) -> None:
        self._values: dict[str, dict[tuple[str, str], None]] = {}
        # Whitelisted networks also cover the addresses inside them (Zeek's Intel::SUBNET).
        self._nets = {False: pytricia.PyTricia(32), True: pytricia.PyTricia(128)}
        self._net_families: set[bool] = set()
        self.size = 0

    def add(self, itype: str, value: str, provider: str, network: bool) -> None:
        held = self._values.setdefault(value, {})
        if (itype, provider) not in held:
            held[(itype, provider)] = None
            self.size += 1
        if network:
            family6 = ":" in value
            self._net_families.add(family6)
            self._nets[family6][value] = held

    def remove(self, itype: str, value: str, provider: str) -> None:
        held = self._values.get(value)
        if held is None or (itype, provider) not in held:
            return
        del held[(itype, provider)]
        self.size -= 1
        if not held:
            del self._values[value]
            trie = self._nets[":" in value]
            if "/" in value and trie.has_key(value):
                del trie[value]

    def source(self, kind: str, seen: str, matched: str) -> str | None:
        """Who whitelisted this hit, if anyone: the indicator's value that matched,
        or the value seen (a name under a listed domain, an address in a listed
        network), or a whitelisted network holding the address seen."""
        values = self._values
        held = values.get(matched)
        if held is None:
            if kind == "domain" or kind == "hostname":
                seen = seen.rstrip(".").lower()
            if kind == "addr" or kind == "domain" or kind == "hostname":
                held = values.get(seen)
            if held is None and kind == "addr" and self._net_families:
                held = self._in_network(seen)
        if not held:
            return None
        return min(provider for _, provider in held)

    def _in_network(self, address: str) -> dict[tuple[str, str], None] | None:
        family6 = ":" in address
        if family6 not in self._net_families:
            return None
        try:
            held: dict[tuple[str, str], None] | None = self._nets[family6].get(address)
        except ValueError:  # not an address
            return None
        return held
