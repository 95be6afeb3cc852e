"""The in-memory indicator index: one lookup per observed value, compactly held.

Each kind of value has one dict: the value (hashes as raw bytes, the rest as
normalised text) maps to a small integer naming an interned metadata tuple
(type, provider, to_ids, confidence, TLP, event, threat level) — feeds repeat
those, so a million indicators share a few thousand tuples. Networks live in
a longest-prefix trie (pytricia). A `domain` also matches subdomains (MISP's
RPZ semantics); a `hostname` matches the exact name. Indicator records are
built only for hits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytricia

from rules.indicator import Indicator, IndicatorError, canonical_url
from rules.vocab import indicator_types

_HASH_KINDS = frozenset({"md5", "sha1", "sha256"})
_LOWER_KINDS = frozenset({"hostname", "email"})
Meta = tuple[str, str, bool, int, str, str, int]  # type, provider, to_ids, confidence, tlp...
Ref = int | tuple[int, ...]
Hit = tuple[int, str]  # (metadata id, the indicator's value that matched)
_NONE: tuple[Hit, ...] = ()


class IndicatorIndex:
    def __init__(self, indicators: Iterable[Indicator] = ()) -> None:
        types = indicator_types()["types"]
        self._metas: list[Meta] = []
        self._meta_ids: dict[Meta, int] = {}
        self._tables: dict[str, dict[Any, Ref]] = {}
        self._nets4 = pytricia.PyTricia(32)
        self._nets6 = pytricia.PyTricia(128)
        self._has_nets = False
        # ECS field -> [(kind, the indicator types of that kind that match there)]
        plan: dict[str, dict[str, set[str]]] = {}
        for itype, spec in types.items():
            for f in spec["fields"]:
                plan.setdefault(f, {}).setdefault(spec["kind"], set()).add(itype)
        self._kind_of = {t: spec["kind"] for t, spec in types.items()}
        of_kind: dict[str, set[str]] = {}
        for t, k in self._kind_of.items():
            of_kind.setdefault(k, set()).add(t)
        # (kind, the types that match there, or None when all of that kind do: no check)
        self._plan: dict[str, list[tuple[str, frozenset[str] | None]]] = {
            f: [(k, None if t == of_kind[k] else frozenset(t)) for k, t in kinds.items()]
            for f, kinds in plan.items()
        }
        self.size = 0
        for ind in indicators:
            self.add(ind)

    def add(self, ind: Indicator) -> None:
        """Index one indicator meant for detection (`to_ids`)."""
        if not ind.to_ids:
            return
        meta: Meta = (
            ind.type,
            ind.provider,
            ind.to_ids,
            ind.confidence,
            ind.tlp,
            ind.event,
            ind.threat_level,
        )
        mid = self._meta_ids.get(meta)
        if mid is None:
            mid = self._meta_ids[meta] = len(self._metas)
            self._metas.append(meta)
        self.size += 1
        kind = self._kind_of[ind.type]
        if kind == "addr" and "/" in ind.value:
            trie = self._nets6 if ":" in ind.value else self._nets4
            held = trie.get(ind.value)
            trie[ind.value] = _join(held, mid)
            self._has_nets = True
            return
        key: Any = bytes.fromhex(ind.value) if kind in _HASH_KINDS else ind.value
        table = self._tables.setdefault(kind, {})
        table[key] = _join(table.get(key), mid)

    def lookup(self, ecs_field: str, value: str) -> list[Indicator]:
        """Indicators that a value seen in `ecs_field` matches, as records."""
        return [self.resolve(hit) for hit in self.probe(ecs_field, value)]

    def resolve(self, hit: Hit) -> Indicator:
        """The indicator record of one hit (built only for hits: records are large)."""
        mid, value = hit
        t, provider, to_ids, confidence, tlp, event, threat = self._metas[mid]
        return Indicator(t, value, provider, to_ids, confidence, tlp, event, threat)

    def probe(self, ecs_field: str, value: str) -> Sequence[Hit]:
        """The hits of a value seen in `ecs_field`: (metadata id, indicator value).

        The hot path: one dict read per kind of value the field can hold, nothing
        allocated on a miss."""
        plan = self._plan.get(ecs_field)
        if plan is None:
            return _NONE
        out: list[Hit] | None = None
        for kind, types in plan:
            table = self._tables.get(kind)
            if kind == "addr":
                if table:
                    ref = table.get(value)
                    if ref is not None:
                        out = self._emit(out, ref, value, types)
                if self._has_nets:
                    out = self._in_networks(out, value, types)
                continue
            if not table:
                continue
            if kind in _HASH_KINDS:
                try:
                    ref = table.get(bytes.fromhex(value))
                except ValueError:
                    continue
                if ref is not None:
                    out = self._emit(out, ref, value.lower(), types)
            elif kind == "domain":
                name = value.rstrip(".").lower()
                while name:  # the name itself, then each parent domain
                    ref = table.get(name)
                    if ref is not None:
                        out = self._emit(out, ref, name, types)
                    name = name.partition(".")[2]
            else:
                if kind == "url":
                    key = _fast_canonical(value)
                    if key is None:
                        continue
                elif kind in _LOWER_KINDS:
                    key = value.rstrip(".").lower() if kind == "hostname" else value.lower()
                else:
                    key = value
                ref = table.get(key)
                if ref is not None:
                    out = self._emit(out, ref, key, types)
        return out if out is not None else _NONE

    def _emit(
        self, out: list[Hit] | None, ref: Ref, value: str, types: frozenset[str] | None
    ) -> list[Hit] | None:
        metas = self._metas
        for mid in (ref,) if isinstance(ref, int) else ref:
            if types is None or metas[mid][0] in types:
                if out is None:
                    out = []
                out.append((mid, value))
        return out

    def _in_networks(
        self, out: list[Hit] | None, value: str, types: frozenset[str] | None
    ) -> list[Hit] | None:
        trie = self._nets6 if ":" in value else self._nets4
        try:
            key = trie.get_key(value)
        except ValueError:
            return out
        while key is not None:  # every enclosing network, not only the longest
            out = self._emit(out, trie[key], key, types)
            key = trie.parent(key)
        return out


def _join(held: Ref | None, mid: int) -> Ref:
    if held is None:
        return mid
    ids = (held,) if isinstance(held, int) else held
    return ids if mid in ids else (*ids, mid)


def _fast_canonical(url: str) -> str | None:
    """canonical_url() for the usual `http://host/path`, without parsing; the rest parsed."""
    if url.startswith("http://"):
        rest = url[7:]
    elif url.startswith("https://"):
        rest = url[8:]
    else:
        rest = ""
    host, sep, path = rest.partition("/")
    if (
        host
        and host == host.lower()
        and host.isascii()
        and not host.endswith(".")
        and ":" not in host
        and "@" not in host
        and "[" not in host
        and "#" not in path
    ):
        return f"{host}/{path}" if sep else f"{host}/"
    try:
        return canonical_url(url)
    except IndicatorError:
        return None
