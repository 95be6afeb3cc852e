"""Zeek intel files: a `#fields` header, then tab-separated records."""

from __future__ import annotations

from pathlib import Path

from rules.indicator import Indicator, IndicatorError, normalise
from rules.sources import IndicatorFileError, LoadResult
from rules.vocab import indicator_types

_HASH_BY_LEN = {32: "md5", 40: "sha1", 64: "sha256"}


def load(path: Path, strict: bool = True) -> LoadResult:
    result = LoadResult(str(path), "zeek-intel", strict=strict)
    mapping = indicator_types()["zeek_intel"]
    fields: list[str] = []
    sep, unset = "\t", "-"
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
            elif line.startswith("#unset_field"):
                unset = line.split(sep, 1)[1]
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
        rec = {k: v for k, v in zip(fields, cols, strict=True) if v != unset}
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
        except IndicatorError as exc:
            result.reject(IndicatorFileError(path, str(exc), lineno))
            continue
        result.indicators.append(
            Indicator(
                type=itype,
                value=value,
                provider=rec.get("meta.source", path.name),
                comment=rec.get("meta.desc", ""),
                event=rec.get("meta.url", path.name),
            )
        )
    if not fields:
        raise IndicatorFileError(path, "no #fields header")
    return result
