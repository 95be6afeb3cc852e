"""Zeek intel files: a `#fields` header, then tab-separated records.

Every `meta.*` column is kept: `meta.source`, `meta.desc` and `meta.url` as the
indicator's provider, comment and event; `meta.whitelist` and `meta.if_in` as
its whitelist flag and where-restriction (with Zeek's meaning, applied by the
index); every other one (`meta.do_notice`, `meta.cif_*`...) as its extra
metadata. A value Zeek's input framework would refuse (a bool that is not T or
F, an unknown Intel::Where) rejects the record, as Zeek skips it.
"""

from __future__ import annotations

from pathlib import Path

from rules.indicator import Indicator, IndicatorError, normalise
from rules.sources import IndicatorFileError, LoadResult
from rules.vocab import indicator_types, zeek_where

_HASH_BY_LEN = {32: "md5", 40: "sha1", 64: "sha256"}
# Zeek's ASCII input reader: T/1 true, F/0 false, nothing else.
_BOOLS = {"T": True, "1": True, "F": False, "0": False}
# The columns with a place of their own on the indicator; every other meta.* is extra.
_OWN = frozenset({"meta.source", "meta.desc", "meta.url", "meta.whitelist", "meta.if_in"})


def load(path: Path, strict: bool = True) -> LoadResult:
    result = LoadResult(str(path), "zeek-intel", strict=strict)
    mapping = indicator_types()["zeek_intel"]
    fields: list[str] = []
    sep, set_sep, unset, empty = "\t", ",", "-", "(empty)"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IndicatorFileError(path, f"cannot read: {exc}") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.startswith("#"):
            if line.startswith("#separator"):
                sep = line.split(" ", 1)[1].strip().encode().decode("unicode_escape")
            elif line.startswith("#set_separator"):
                set_sep = line.split(sep, 1)[1]
            elif line.startswith("#unset_field"):
                unset = line.split(sep, 1)[1]
            elif line.startswith("#empty_field"):
                empty = line.split(sep, 1)[1]
            elif line.startswith("#fields"):
                fields = line.split(sep)[1:]
            continue
        if not fields:
            raise IndicatorFileError(path, "record before the #fields header", lineno)
        cols = line.split(sep)
        if len(cols) != len(fields):
            result.reject(
                IndicatorFileError(
                    path, f"{len(cols)} columns where #fields names {len(fields)}", lineno
                )
            )
            continue
        rec = {
            k: ("" if v == empty else v) for k, v in zip(fields, cols, strict=True) if v != unset
        }
        if "indicator" not in rec or "indicator_type" not in rec:
            result.reject(IndicatorFileError(path, "missing indicator or indicator_type", lineno))
            continue
        ztype = rec["indicator_type"]
        if ztype not in mapping:
            result.skipped[f"type {ztype}"] += 1
            continue
        itype = mapping[ztype]
        if itype == "hash":
            itype = _HASH_BY_LEN.get(len(rec["indicator"].strip()), "md5")
        try:
            value = normalise(itype, rec["indicator"])
            whitelist = _bool(rec, "meta.whitelist")
            if_in = parse_if_in(rec.get("meta.if_in", ""), set_sep)
        except IndicatorError as exc:
            result.reject(IndicatorFileError(path, str(exc), lineno))
            continue
        result.indicators.append(
            Indicator(
                type=itype,
                value=value,
                provider=rec.get("meta.source") or path.name,
                comment=rec.get("meta.desc", ""),
                event=rec.get("meta.url") or path.name,
                whitelist=whitelist,
                if_in=if_in,
                extra=tuple(
                    sorted(
                        (k.removeprefix("meta."), v)
                        for k, v in rec.items()
                        if k.startswith("meta.") and k not in _OWN
                    )
                ),
            )
        )
    if not fields:
        raise IndicatorFileError(path, "no #fields header")
    return result


def _bool(rec: dict[str, str], column: str) -> bool:
    text = rec.get(column, "F").strip() or "F"
    if text not in _BOOLS:
        raise IndicatorError(f"{column} must be T or F, not {text!r}")
    return _BOOLS[text]


def parse_if_in(text: str, set_sep: str = ",") -> tuple[str, ...]:
    """The Intel::Where names of a `meta.if_in` (Zeek takes one; a set is read too),
    sorted; () for anywhere. IndicatorError for a name Zeek does not define."""
    vocab = zeek_where()
    names = {n.strip() for n in text.split(set_sep) if n.strip()}
    if names & set(vocab["anywhere"]):
        return ()
    unknown = sorted(names - set(vocab["where"]))
    if unknown:
        raise IndicatorError(f"meta.if_in: unknown Intel::Where {unknown[0]!r}")
    return tuple(sorted(names))
