"""The `vigia` command's help in the reader's language (Spanish by default; English
with VIGIA_LANG=en), from the message catalogues (core/locale): each command's and
option's help has an id "cli.<command path>[.<parameter>]" ("cli.token.create.role");
the English catalogue holds the text written in the code, so a help text without an
entry stays as written. Typer's own panel titles and the help option follow."""

from __future__ import annotations

import os
from typing import Any

import typer.rich_utils

from core.i18n import LANGS, text


def language() -> str:
    lang = os.environ.get("VIGIA_LANG", "es").strip().lower()[:2]
    return lang if lang in LANGS else "es"


def _say(lang: str, key: str, written: str | None) -> str | None:
    if not written:
        return written
    found = text(lang, key)
    return written if found == key else found


def localise(command: Any, lang: str, path: tuple[str, ...] = ()) -> Any:
    """The command tree with its help texts from the catalogue (in place)."""
    key = "cli." + (".".join(path) or "vigia")
    command.help = _say(lang, key, command.help)
    for p in command.params:
        if hasattr(p, "help"):  # options, and typer's arguments
            p.help = _say(lang, f"{key}.{p.name}", p.help)
    helper = command.get_help_option(command.context_class(command))
    if helper is not None:
        helper.help = text(lang, "cli.help_option")
    # (duck-typed: typer's groups and options need not be click's own classes)
    for name, sub in dict(getattr(command, "commands", {})).items():
        localise(sub, lang, (*path, name))
    return command


def panels(lang: str) -> None:
    """Typer's panel titles ("Options", "Commands"...) in the language."""
    ru = typer.rich_utils
    ru.OPTIONS_PANEL_TITLE = text(lang, "cli.panel.options")
    ru.ARGUMENTS_PANEL_TITLE = text(lang, "cli.panel.arguments")
    ru.COMMANDS_PANEL_TITLE = text(lang, "cli.panel.commands")
    ru.ERRORS_PANEL_TITLE = text(lang, "cli.panel.error")
    ru.REQUIRED_LONG_STRING = text(lang, "cli.required")
    ru.DEFAULT_STRING = text(lang, "cli.default")
