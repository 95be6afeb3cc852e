"""The console's and the API's side of the message catalogues (core.i18n):
`translator(lang)` is the `t` the console templates call."""

from __future__ import annotations

from core.i18n import DEFAULT, LANGS, N_, pick, po_path, text, translations, translator

__all__ = ["DEFAULT", "LANGS", "N_", "pick", "po_path", "text", "translations", "translator"]
