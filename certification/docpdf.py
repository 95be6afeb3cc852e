"""The pieces every certification PDF is drawn with (fpdf2): the page, titles,
label/value lines, tables and plain vector bars. No fonts are shipped: the PDF
core font (Helvetica, WinAnsi) covers Spanish; anything outside it that an entity
typed is replaced, never an error."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from certification.docpage import Page

# Typographic characters people paste, mapped to what the core font has.
_PLAIN = str.maketrans({"—": "-", "–": "-", "“": '"', "”": '"', "‘": "'", "’": "'", "…": "..."})
GREY = (110, 110, 110)
BAR = (31, 95, 153)
TARGET_LINE = (190, 40, 40)


def plain(text: object) -> str:
    """Text the core font can draw: Latin-1, other characters as '?'."""
    s = str(text).translate(_PLAIN)
    return s.encode("latin-1", "replace").decode("latin-1")


def day(t: datetime | None) -> str:
    return t.strftime("%d/%m/%Y") if t else "-"


def Doc(issuer: str, title: str) -> Page:
    """A new A4 document (certification.docpage.Page). fpdf2 is imported with the
    first one: it costs every start of the centre almost half a second otherwise."""
    from certification.docpage import Page

    return Page(issuer, title)
