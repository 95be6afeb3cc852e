"""CSV indicator files: a header with at least `type,value` (MISP attribute types).

Optional columns: provider, to_ids, confidence, tlp, event, comment. Read with
column positions found once from the header: a million rows load in seconds.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from rules.indicator import Indicator, IndicatorError, normalise, normalise_tlp
from rules.sources import IndicatorFileError, LoadResult

_TRUE = frozenset({"1", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "f", ""})
_OPTIONAL = ("provider", "to_ids", "confidence", "tlp", "event", "comment")

_tlp = lru_cache(maxsize=64)(normalise_tlp)  # a handful of distinct values per file


def load(path: Path, strict: bool = True) -> LoadResult:
    result = LoadResult(str(path), "csv", strict=strict)
    result.indicators = list(stream(path, result))
    return result


def stream(path: Path, result: LoadResult) -> Iterator[Indicator]:
    """The file's indicators one at a time (rejects counted in `result`): `vigia scan`
    indexes a million of them without holding them all as records."""
    name = path.name
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            pos = {h: i for i, h in enumerate(header)}
            if "type" not in pos or "value" not in pos:
                raise IndicatorFileError(path, "the header needs type and value columns", 1)
            t_at, v_at = pos["type"], pos["value"]
            opt = [
                pos.get(k) for k in _OPTIONAL
            ]  # provider, to_ids, confidence, tlp, event, comment
            width = len(header)
            blank = [""] * width
            bare = ("",) * len(_OPTIONAL) if all(k is None for k in opt) else None
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) > width:
                    result.reject(IndicatorFileError(path, "more columns than the header", line))
                    continue
                if len(row) < width:
                    row = row + blank[len(row) :]
                # The optional columns, "" where absent (one pass: a million rows come through).
                prov, ids, conf, tlp_text, event, comment = bare or [
                    row[k].strip() if k is not None else "" for k in opt
                ]
                try:
                    itype = row[t_at].strip().lower()
                    value = normalise(itype, row[v_at])
                    tlp = _tlp(tlp_text)
                    confidence = int(conf) if conf else 50
                    if not 0 <= confidence <= 100:
                        raise IndicatorError("confidence must be 0-100")
                except (IndicatorError, ValueError, IndexError) as exc:
                    result.reject(IndicatorFileError(path, str(exc), line))
                    continue
                to_ids = (ids or "true").lower()
                if to_ids not in _TRUE and to_ids not in _FALSE:
                    result.reject(
                        IndicatorFileError(
                            path, f"to_ids must be true or false, not {to_ids!r}", line
                        )
                    )
                    continue
                yield (
                    Indicator(
                        itype,
                        value,
                        prov or name,
                        to_ids in _TRUE,
                        confidence,
                        tlp,
                        event or name,
                        0,
                        None,
                        None,
                        None,
                        comment,
                    )
                )
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise IndicatorFileError(path, f"cannot read CSV: {exc}") from None
