"""CSV indicator files: a header with at least `type,value` (MISP attribute types).

Optional columns: provider, to_ids, confidence, tlp, event, comment.
"""

from __future__ import annotations

import csv
from pathlib import Path

from rules.indicator import Indicator, IndicatorError, normalise, normalise_tlp
from rules.sources import IndicatorFileError, LoadResult

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


def load(path: Path) -> LoadResult:
    result = LoadResult(str(path), "csv")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            reader.fieldnames = header
            for row in reader:
                _row(path, reader.line_num, row, result)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise IndicatorFileError(path, f"cannot read CSV: {exc}") from None
    return result


def _row(path: Path, line: int, row: dict[str, str | None], result: LoadResult) -> None:
    def col(name: str, default: str = "") -> str:
        return (row.get(name) or default).strip()

    if None in row:
        raise IndicatorFileError(path, "more columns than the header", line)
    itype = col("type").lower()
    try:
        value = normalise(itype, col("value"))
        tlp = normalise_tlp(col("tlp"))
        confidence = int(col("confidence", "50"))
        if not 0 <= confidence <= 100:
            raise IndicatorError("confidence must be 0-100")
    except (IndicatorError, ValueError) as exc:
        raise IndicatorFileError(path, str(exc), line) from None
    to_ids = col("to_ids", "true").lower()
    if to_ids not in _TRUE | _FALSE:
        raise IndicatorFileError(path, f"to_ids must be true or false, not {to_ids!r}", line)
    result.indicators.append(
        Indicator(
            type=itype,
            value=value,
            provider=col("provider", path.name),
            to_ids=to_ids in _TRUE,
            confidence=confidence,
            tlp=tlp,
            event=col("event", path.name),
            comment=col("comment"),
        )
    )
