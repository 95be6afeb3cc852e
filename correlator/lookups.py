"""The indicator index's per-value loops, compiled with mypyc (setup.py).

correlator.index looks a batch's values up a field at a time; what is left
per value or per hit (lowering names, a URL's key, a domain's parents, the
hit pairs) is a Python loop, and compiled it costs less (issue 17: most of
a hit's time is the dicts' memory, the rest is this). Plain functions over
the index's tables, so the representation stays in correlator.index (plain
Python) and an edit there needs no rebuild. Listed in sensors/compiled.py as
the sensor's modules are: an edited copy runs only once rebuilt
(`python setup.py build_ext --inplace`); VIGIA_PURE_PYTHON=1 installs it plain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rules.indicator import IndicatorError, canonical_url

# (position of the value in the batch, (metadata id, the indicator's value))
Found = list[tuple[int, tuple[int, str]]]


def exact(
    out: Found,
    table: dict[Any, Any],
    keys: Sequence[Any],
    shown: Sequence[str | None],
    types: frozenset[str] | None,
    metas: Sequence[tuple[Any, ...]],
    lower: bool,
) -> None:
    """Hits of the values whose key (`keys`, in order) the table holds; `shown` is
    the value each hit names (lowered with `lower`); `types`, when given, the
    indicator types that may hit here."""
    refs = list(map(table.get, keys))
    if refs.count(None) == len(refs):  # the usual batch: no hit
        return
    for i, ref in enumerate(refs):
        if ref is None:
            continue
        value = shown[i]
        assert value is not None  # a key of None never hits
        if lower:
            value = value.lower()
        if type(ref) is int:  # one indicator, the usual case: inlined (plain Python)
            if types is None or metas[ref][0] in types:
                out.append((i, (ref, value)))
        else:
            emit(out, i, ref, value, types, metas)


def parents(
    out: Found,
    table: dict[Any, Any],
    names: Sequence[str],
    types: frozenset[str] | None,
    depths: tuple[int, ...],
    metas: Sequence[tuple[Any, ...]],
) -> None:
    """A `domain` matches the name itself and its subdomains: each suffix of a name
    as long as a listed domain (`depths`: their label counts, longest first)."""
    for i, name in enumerate(names):
        labels = name.count(".") + 1
        for depth in depths:
            if depth > labels:
                continue
            key = name if depth == labels else name.split(".", labels - depth)[-1]
            ref = table.get(key)
            if ref is not None:
                emit(out, i, ref, key, types, metas)


def emit(
    out: Found,
    i: int,
    ref: Any,
    value: str,
    types: frozenset[str] | None,
    metas: Sequence[tuple[Any, ...]],
) -> None:
    """The hits of one held ref: a metadata id, or a tuple of them."""
    if type(ref) is int:  # one indicator, the usual case
        if types is None or metas[ref][0] in types:
            out.append((i, (ref, value)))
        return
    for mid in ref:
        if types is None or metas[mid][0] in types:
            out.append((i, (mid, value)))


def names_of(values: Sequence[str]) -> list[str]:
    """DNS names as the index holds them: lower case, no trailing dot."""
    return [v.rstrip(".").lower() for v in values]


def url_keys(values: Sequence[str]) -> list[str | None]:
    return [fast_canonical(v) for v in values]


def fast_canonical(url: str) -> str | None:
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
