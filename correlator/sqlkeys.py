"""Match keys in the SQL store: what an observation is stored with on PostgreSQL so
that a retro-hunt reads only the observations its indicators may match.

Without them a retro-hunt reads and parses every stored document (10 M of them:
~10 minutes). Each observation row carries `match_keys`, a bigint[] under a GIN
index, written at ingest in the same statement as the row: a 64-bit key for each
value the index could match there, in the form the index looks it up in —

- an address itself (`a:`), and for IPv4 its /24 (`n:` and three octets), which
  every enclosing network from /8 to /32 finds (a /16 asks for its 256 /24s);
- each domain-typed name and its parents of two labels or more (`d:`): a domain
  indicator matches its subdomains, a hostname the name itself;
- a URL canonical (`u:`), a hash or an e-mail address lower-cased (`h:`, `e:`),
  any other value as seen (`t:`).

A key is the first 8 bytes of the MD5 of its text, as PostgreSQL also computes
it (`KEY_SQL`: a bulk fill or a backfill can write keys server-side). Keys only
narrow: two texts sharing a key make a candidate more, never a match missed, as
the Matcher decides on the document. An indicator they cannot express (an IPv6
network, an IPv4 network wider than /8, a one-label domain) is hunted the old
way, over every document.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import suppress
from functools import cache, lru_cache
from hashlib import md5

from rules.indicator import HASH_KINDS, Indicator, IndicatorError, canonical_url
from rules.vocab import indicator_types
from sensors.observation import Observation

# The same key, computed by PostgreSQL from a text expression (for bench fills and
# backfills): the first 16 hex digits of its MD5 as a signed 64-bit integer.
KEY_SQL = "('x' || left(md5({}), 16))::bit(64)::bigint"
WIDEST_V4 = 8  # prefix length: a wider network would ask for more than 65 536 /24s


def key(text: str) -> int:
    return int.from_bytes(
        md5(text.encode(), usedforsecurity=False).digest()[:8], "big", signed=True
    )


@cache
def _kinds() -> dict[str, frozenset[str]]:
    """ECS field -> the kinds of indicator that match there (the vocabulary's data)."""
    out: dict[str, set[str]] = {}
    for spec in indicator_types()["types"].values():
        for f in spec["fields"]:
            out.setdefault(f, set()).add(spec["kind"])
    return {f: frozenset(k) for f, k in out.items()}


@cache
def _kind_of() -> dict[str, str]:
    return {t: spec["kind"] for t, spec in indicator_types()["types"].items()}


def _texts(kind: str, value: str) -> Iterator[str]:
    """The key texts of one observed value, for one kind of indicator."""
    if kind == "addr":
        yield "a:" + value
        octets = value.split(".")
        if len(octets) == 4:
            yield "n:" + ".".join(octets[:3])
    elif kind == "domain" or kind == "hostname":
        labels = value.rstrip(".").lower().split(".")
        yield "d:" + ".".join(labels)  # the name itself, whatever its length
        for i in range(1, len(labels) - 1):
            yield "d:" + ".".join(labels[i:])
    elif kind == "url":
        with suppress(IndicatorError):  # not a URL: the index finds nothing for it either
            yield "u:" + canonical_url(value)
    elif kind in HASH_KINDS:
        yield "h:" + value.lower()
    elif kind == "email":
        yield "e:" + value.lower()
    else:
        yield "t:" + value


def observation_keys(obs: Observation) -> list[int]:
    """The keys one observation is stored with (each once)."""
    kinds = _kinds()
    keys: set[int] = set()
    for field, value in obs.fields():  # addresses included, whatever the record
        for kind in kinds.get(field, ()):
            keys.update(_value_keys(kind, value))
    return list(keys)


@lru_cache(maxsize=1 << 16)
def _value_keys(kind: str, value: str) -> tuple[int, ...]:
    # Traffic repeats its servers, resolvers and names: a value's keys are made once.
    return tuple(key(t) for t in _texts(kind, value))


def indicator_texts(ind: Indicator) -> list[str] | None:
    """The key texts an indicator's candidates are found by (any of them); None when
    keys cannot express it (hunted over every document)."""
    kind = _kind_of().get(ind.type)
    value = ind.value
    if kind is None:
        return []
    if kind == "addr" and "/" in value:
        net, _, plen = value.partition("/")
        octets = net.split(".")
        bits = int(plen) if plen.isdigit() else -1
        if len(octets) != 4 or not WIDEST_V4 <= bits <= 32:
            return None
        first = int.from_bytes(bytes(map(int, octets)), "big") >> 8
        count = 1 << max(0, 24 - bits)
        return [
            "n:" + ".".join(map(str, n.to_bytes(3, "big"))) for n in range(first, first + count)
        ]
    if kind == "addr":
        return ["a:" + value]
    if kind == "domain":
        name = value.rstrip(".").lower()
        return None if "." not in name else ["d:" + name]
    if kind == "hostname":
        return ["d:" + value.rstrip(".").lower()]
    if kind == "url":
        return ["u:" + value]
    if kind in HASH_KINDS:
        return ["h:" + value.lower()]
    if kind == "email":
        return ["e:" + value.lower()]
    return ["t:" + value]


def indicator_keys(indicators: Iterable[Indicator]) -> set[int] | None:
    """The keys of all the indicators' candidates; None when one of them has none."""
    keys: set[int] = set()
    for ind in indicators:
        texts = indicator_texts(ind)
        if texts is None:
            return None
        keys.update(map(key, texts))
    return keys
