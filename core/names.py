"""Which characters a name or a free text may hold, checked wherever values enter
(the API's request models, the registry behind the CLI and the CSV import).

A name, title or file name is one line of visible text. Refused: every C0 control
(NUL included), DEL, the C1 controls, and the bidirectional embeddings,
overrides and isolates, which make a name display other than it is spelt
("invoice\u202egpj.exe" shows as "invoiceexe.jpg"). Free text (notes, summaries,
comments) keeps tabs and line breaks and the direction marks mixed-script prose
may need; other controls are refused.
"""

from __future__ import annotations

import re

NOT_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
NOT_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def refused_in_name(value: str) -> str | None:
    """The first character a name may not hold, as U+XXXX, or None."""
    found = NOT_IN_NAMES.search(value)
    return f"U+{ord(found.group()):04X}" if found else None


def refused_in_text(value: str) -> str | None:
    found = NOT_IN_TEXT.search(value)
    return f"U+{ord(found.group()):04X}" if found else None
