"""CSV for spreadsheets, without formula injection: every export writes through here.

Spreadsheets run a cell that starts with = + - @ (and, in some, a tab or a
carriage return before one) as a formula, so a value an entity typed, such as a
contact e-mail `=HYPERLINK(...)@x.bo`, could run in an analyst's spreadsheet. Each
text cell that starts so gets a leading apostrophe (OWASP's advice); numbers we
produce ourselves pass as they are. The import side drops that one apostrophe
again (`unescape`), so an export imports back unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_STARTS = frozenset(FORMULA_START)


def cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def checked(text: str) -> str:
    """`cell` for a value known to be text (no type test)."""
    return "'" + text if text[:1] in _STARTS else text


def quoted(text: str) -> str:
    """A text cell (already escaped) as the csv module writes it: in quotes, its quotes
    doubled, when it holds a comma, a quote or a line break; as it is otherwise. For
    callers that build CSV lines themselves (a report's million hosts, line by line
    as they come); `Writer.lines` puts them after the header."""
    if "," in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def unescape(text: str) -> str:
    """A cell as exported back to its value: one apostrophe that `cell` added goes."""
    if text.startswith("'") and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


class Writer:
    """CSV built a row at a time (while the data streams in), every cell escaped."""

    def __init__(self, header: Sequence[str]) -> None:
        self._buf = io.StringIO()
        self._w = csv.writer(self._buf)
        self.row(header)

    def row(self, cells: Sequence[Any]) -> None:
        self._w.writerow([cell(v) for v in cells])

    def rows(self, body: Iterable[Sequence[Any]]) -> None:
        """Many rows at once (a report's million hosts): `cell` inlined, as a test of
        the first character (each of FORMULA_START is one) instead of a call per cell."""
        starts = _STARTS
        self._w.writerows(
            ["'" + v if isinstance(v, str) and v[:1] in starts else v for v in r] for r in body
        )

    def lines(self, lines: Iterable[str]) -> None:
        """CSV lines the caller built with `checked` and `quoted`, each ending in CRLF
        as the csv module ends them."""
        self._buf.write("".join(lines))

    def text(self) -> str:
        return self._buf.getvalue()


def rows(header: Sequence[str], body: Iterable[Sequence[Any]]) -> str:
    """A header and rows as CSV text, every cell escaped."""
    out = Writer(header)
    out.rows(body)
    return out.text()


def dicts(fieldnames: Sequence[str], body: Iterable[Mapping[str, Any]]) -> str:
    """Records as CSV text, in `fieldnames`' order, every cell escaped."""
    return rows(fieldnames, ([r.get(f, "") for f in fieldnames] for r in body))
