"""The in-memory indicator index: one lookup per observed value, compactly held.

Each kind of value has one dict: the value (hashes as raw bytes, the rest as
normalised text, IPv4 addresses as integers) maps to a small integer naming an
interned metadata tuple (type, provider, to_ids, confidence, TLP, event, threat
level, Zeek's if_in and extra metadata) — feeds repeat those, so a million
indicators share a few thousand tuples. IPv4 networks are held in one dict per
prefix length (the network's leading bits as an integer), IPv6 networks in a
longest-prefix trie (pytricia). A `domain` also matches subdomains (MISP's RPZ
semantics); a `hostname` matches the exact name. Indicator records are built
only for hits.

Integers, not text, for IPv4 (issue 17, `vigia scan`'s memory): an address's
str key is 64 bytes and its int 32; a network in the trie ~135 bytes and in its
length's dict ~80. Looked up from a batch, the values are converted once by
the C library (inet_pton, which accepts only the dotted quad that addresses
are stored as, so equal ints are equal strings); an address is then looked up
once per prefix length held. That was faster than the trie's walk on distinct
addresses (~0.6 µs against ~1.2 µs with 3 lengths, 2.3 against 2.7 with 25),
~60 ns slower on one address repeated (its walk stays in the cache).

Zeek's whitelist and `meta.if_in` are applied to the hits only: whitelisted
values are held apart (correlator.whitelist), and a lookup with no hit, or an
index with neither, pays nothing for them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import rshift
from socket import AF_INET, inet_pton
from typing import Any, cast

import pytricia

from correlator import indexkeys, lookups
from correlator.whitelist import Suppressed, Whitelist
from rules.indicator import HASH_KINDS, Indicator
from rules.vocab import indicator_types, zeek_where

# type, provider, to_ids, confidence, tlp, event, threat level, if_in, extra
Meta = tuple[str, str, bool, int, str, str, int, tuple[str, ...], tuple[tuple[str, str], ...]]
Ref = int | tuple[int, ...]
Hit = tuple[int, str]  # (metadata id, the indicator's value that matched)


class IndicatorIndex:
    def __init__(self, indicators: Iterable[Indicator] = ()) -> None:
        types = indicator_types()["types"]
        self._metas: list[Meta] = []
        self._meta_ids: dict[Meta, int] = {}
        self._tables: dict[str, dict[Any, Ref]] = {}
        # prefix length -> {the network's leading `length` bits: ref}
        self._nets4: dict[int, dict[int, Ref]] = {}
        self._lengths4: tuple[int, ...] = ()  # of _nets4, longest first
        self._nets6 = pytricia.PyTricia(128)
        self._families: set[bool] = set()  # IPv6? of the networks held (len(trie) walks it)
        self._depths: set[int] = set()  # label counts of the listed domains
        self._depths_sorted: tuple[int, ...] | None = None
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
        self.whitelist = Whitelist()
        # metadata id -> the ECS fields its meta.if_in allows (only restricted ones)
        self._allowed_fields: dict[int, frozenset[str]] = {}
        self._where = zeek_where()["where"]
        for ind in indicators:
            self.add(ind)

    @property
    def screens(self) -> bool:
        """Hits need a second look (a whitelist or an if_in is held)."""
        return bool(self.whitelist.size or self._allowed_fields)

    def add(self, ind: Indicator) -> None:
        """Index one indicator meant for detection (`to_ids`) or a whitelisted value;
        building from the store, whose rows are one per type, value and provider."""
        if ind.whitelist:
            self._whitelist(ind)
            return
        if not ind.to_ids:
            return
        self.size += 1
        where, key = self._slot(ind)
        where[key] = _join(_held(where, key), self._meta_id(ind))

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]]) -> IndicatorIndex:
        """Built from stored rows as correlator.bulkstore reads them (ROW's columns):
        no Indicator record made for the usual row."""
        index = cls()
        add, slot, meta_id = index.add, index._slot_of, index._meta_id_of
        for t, value, provider, to_ids, confidence, tlp, event, threat, white, if_in, extra in rows:
            if white or if_in or extra:  # Zeek's policy columns: rare, the general path
                add(row_record(t, value, provider, to_ids, confidence, tlp, event, threat,
                            white, if_in, extra))  # fmt: skip
                continue
            if not to_ids:
                continue
            index.size += 1
            where, key = slot(t, value)
            mid = meta_id((t, provider, True, confidence, tlp, event, threat, (), ()))
            held = where.get(key) if where.__class__ is dict else _held(where, key)
            where[key] = mid if held is None else _join(held, mid)
        return index

    def put(self, ind: Indicator, active: bool = True) -> None:
        """Index a changed indicator in place of the one held for its type, value and
        provider; one no longer for detection (or not `active`: expired) only goes."""
        if self.whitelist.size:
            self.whitelist.remove(ind.type, ind.value, ind.provider)
        if ind.whitelist and active:
            self._whitelist(ind)
        where, key = self._slot(ind)
        held = _held(where, key)
        ids = () if held is None else (held,) if isinstance(held, int) else held
        metas = self._metas
        keep = [m for m in ids if metas[m][:2] != (ind.type, ind.provider)]
        self.size -= len(ids) - len(keep)
        if ind.to_ids and active and not ind.whitelist:
            keep.append(self._meta_id(ind))
            self.size += 1
        if keep:
            where[key] = keep[0] if len(keep) == 1 else tuple(keep)
        elif held is not None:
            del where[key]

    def _meta_id(self, ind: Indicator) -> int:
        return self._meta_id_of(
            (
                ind.type,
                ind.provider,
                ind.to_ids,
                ind.confidence,
                ind.tlp,
                ind.event,
                ind.threat_level,
                ind.if_in,
                ind.extra,
            )
        )

    def _meta_id_of(self, meta: Meta) -> int:
        mid = self._meta_ids.get(meta)
        if mid is None:
            # Interned, strings and all: a million rows read from the store bring a
            # million copies of the same provider and event names; one is kept.
            meta = cast(Meta, tuple(sys.intern(v) if type(v) is str else v for v in meta))
            mid = self._meta_ids[meta] = len(self._metas)
            self._metas.append(meta)
            if_in = meta[7]
            if if_in:  # unknown names were refused at load; here they allow nothing
                where = self._where
                self._allowed_fields[mid] = frozenset(
                    f for name in if_in for f in where.get(name, ())
                )
        return mid

    def _whitelist(self, ind: Indicator) -> None:
        network = self._kind_of[ind.type] == "addr" and "/" in ind.value
        self.whitelist.add(ind.type, ind.value, ind.provider, network)

    def _slot(self, ind: Indicator) -> tuple[Any, Any]:
        return self._slot_of(ind.type, ind.value)

    def _slot_of(self, itype: str, value: str) -> tuple[Any, Any]:
        """Where an indicator's value is held: (its dict or trie, its key there)."""
        kind = self._kind_of[itype]
        if kind == "addr":
            if "/" not in value:
                return self._tables.setdefault(kind, {}), indexkeys.addr_key(value)
            family6 = ":" in value
            self._families.add(family6)
            if family6:
                return self._nets6, value
            addr, _, bits = value.partition("/")  # as stored: a.b.c.d/n, n < 32
            length = int(bits)
            nets = self._nets4.get(length)
            if nets is None:
                nets = self._nets4[length] = {}
                self._lengths4 = tuple(sorted(self._nets4, reverse=True))
            return nets, int.from_bytes(inet_pton(AF_INET, addr)) >> (32 - length)
        if kind == "domain":
            depth = value.count(".") + 1
            if depth not in self._depths:
                self._depths.add(depth)
                self._depths_sorted = None
        key: Any = bytes.fromhex(value) if kind in HASH_KINDS else value
        return self._tables.setdefault(kind, {}), key

    def lookup(self, ecs_field: str, value: str) -> list[Indicator]:
        """Indicators that a value seen in `ecs_field` matches, as records."""
        return [self.resolve(hit) for hit in self.probe(ecs_field, value)]

    def resolve(self, hit: Hit) -> Indicator:
        """The indicator record of one hit (built only for hits: records are large)."""
        mid, value = hit
        t, provider, to_ids, confidence, tlp, event, threat, if_in, extra = self._metas[mid]
        return Indicator(
            t, value, provider, to_ids, confidence, tlp, event, threat, None, None, None, "",
            False, if_in, extra,
        )  # fmt: skip

    def probe(self, ecs_field: str, value: str) -> Sequence[Hit]:
        """The hits of one value seen in `ecs_field`: (metadata id, indicator value)."""
        return [hit for _, hit in self.probe_field(ecs_field, (value,))]

    def probe_field(
        self, ecs_field: str, values: Sequence[str], suppressed: Suppressed | None = None
    ) -> list[tuple[int, Hit]]:
        """The hits of many values seen in one field: (position in `values`, hit).

        The hot path. The correlator groups a batch's values by field, so each
        kind of value is looked up for the whole group by a C-level map over
        its dict; Python touches only the hits. Hits on a whitelisted value, or
        in a field an indicator's if_in leaves out, are dropped (and counted in
        `suppressed`)."""
        out: list[tuple[int, Hit]] = []
        plan = self._plan.get(ecs_field)
        if plan is None or not values:
            return out
        names: list[str] | None = None  # hostname and domain share the lowered names
        for kind, types in plan:
            table = self._tables.get(kind)
            if kind == "addr":
                if table or self._families:
                    keys, all4 = indexkeys.addr_keys(values)
                    if table:
                        self._exact(out, table, keys, values, types)
                    if self._families:
                        self._in_networks(out, values, keys, all4, types)
            elif not table:
                continue
            elif kind in HASH_KINDS:
                self._exact(out, table, indexkeys.hash_keys(values), values, types, lower=True)
            elif kind == "hostname" or kind == "domain":
                if names is None:
                    names = lookups.names_of(values)
                if kind == "hostname":
                    self._exact(out, table, names, names, types)
                else:
                    self._parents(out, table, names, types)
            elif kind == "url":
                keys = lookups.url_keys(values)
                self._exact(out, table, keys, keys, types)
            elif kind == "email":
                keys = list(map(str.lower, values))
                self._exact(out, table, keys, keys, types)
            else:
                self._exact(out, table, values, values, types)
        if out and self.screens:
            return self._screen(ecs_field, values, out, suppressed)
        return out

    def _screen(
        self,
        ecs_field: str,
        values: Sequence[str],
        hits: list[tuple[int, Hit]],
        suppressed: Suppressed | None,
    ) -> list[tuple[int, Hit]]:
        """The hits that count: in a place their if_in allows, on no whitelisted value."""
        kept: list[tuple[int, Hit]] = []
        allowed_fields, whitelist = self._allowed_fields, self.whitelist
        metas, kind_of = self._metas, self._kind_of
        for i, hit in hits:
            mid, value = hit
            fields = allowed_fields.get(mid)
            if fields is not None and ecs_field not in fields:
                if suppressed is not None:  # Zeek: no notice outside if_in
                    suppressed.outside_if_in += 1
                continue
            if whitelist.size:
                source = whitelist.source(kind_of[metas[mid][0]], values[i], value)
                if source is not None:
                    if suppressed is not None:
                        suppressed.by_whitelist[source] += 1
                    continue
            kept.append((i, hit))
        return kept

    # The per-value loops are correlator.lookups' (compiled with mypyc, setup.py).
    def _exact(
        self,
        out: list[tuple[int, Hit]],
        table: dict[Any, Ref],
        keys: Sequence[Any],
        shown: Sequence[str | None],
        types: frozenset[str] | None,
        lower: bool = False,
    ) -> None:
        lookups.exact(out, table, keys, shown, types, self._metas, lower)

    def _parents(
        self,
        out: list[tuple[int, Hit]],
        table: dict[Any, Ref],
        names: list[str],
        types: frozenset[str] | None,
    ) -> None:
        lookups.parents(out, table, names, types, self._domain_depths(), self._metas)

    def _emit(
        self,
        out: list[tuple[int, Hit]],
        i: int,
        ref: Ref,
        value: str,
        types: frozenset[str] | None,
    ) -> None:
        lookups.emit(out, i, ref, value, types, self._metas)

    def _in_networks(
        self,
        out: list[tuple[int, Hit]],
        values: Sequence[str],
        keys: list[Any],
        all4: bool,
        types: frozenset[str] | None,
    ) -> None:
        """Every network holding each value, not only the longest (`keys`, `all4`:
        indexkeys.addr_keys)."""
        if self._lengths4:
            self._in_networks4(out, keys if all4 else indexkeys.v4_only(keys), types)
        # pytricia answers across families (0.0.0.0/0 holds '2001:db8::1'): the
        # IPv6 trie sees only IPv6 values.
        if True not in self._families or ":" not in "".join(values):
            return
        trie = self._nets6
        for i, v in enumerate(values):
            key = indexkeys.trie_key(trie, v) if ":" in v else None
            while key is not None:
                self._emit(out, i, trie[key], key, types)
                key = trie.parent(key)

    def _in_networks4(
        self, out: list[tuple[int, Hit]], addrs: list[int], types: frozenset[str] | None
    ) -> None:
        """`addrs`: each value's IPv4 address as an int, -1 for none (shifted, still -1:
        no network's key). Each prefix length held is looked up for the whole batch.
        A value that is not an address matches nothing (the trie matched some, as its
        parser read them: `10.1.2.3/24` or a trailing NUL)."""
        for length in self._lengths4:  # longest first, as a trie's parents come
            nets, shift = self._nets4[length], 32 - length
            refs = list(map(nets.get, map(rshift, addrs, repeat(shift))))
            if refs.count(None) < len(refs):
                for i, ref in enumerate(refs):
                    if ref is not None:
                        self._emit(
                            out, i, ref, indexkeys.net_text(addrs[i] >> shift, length), types
                        )

    def _domain_depths(self) -> tuple[int, ...]:
        if self._depths_sorted is None:
            self._depths_sorted = tuple(sorted(self._depths, reverse=True))
        return self._depths_sorted


def row_record(
    t: str,
    value: str,
    provider: str,
    to_ids: bool,
    confidence: int,
    tlp: str,
    event: str,
    threat: int,
    whitelist: bool,
    if_in: str,
    extra: dict[str, str] | None,
) -> Indicator:
    """A stored row (bulkstore.ROW) as its record."""
    return Indicator(
        t, value, provider, bool(to_ids), confidence, tlp, event, threat, None, None, None, "",
        bool(whitelist), tuple(if_in.split(",")) if if_in else (),
        tuple(sorted(extra.items())) if extra else (),
    )  # fmt: skip


def _held(where: Any, key: Any) -> Ref | None:
    if isinstance(where, dict):
        return where.get(key)
    # A trie's get() answers the longest enclosing prefix: only an exact key is this one's.
    return where[key] if where.has_key(key) else None


def _join(held: Ref | None, mid: int) -> Ref:
    if held is None:
        return mid
    ids = (held,) if isinstance(held, int) else held
    return ids if mid in ids else (*ids, mid)
