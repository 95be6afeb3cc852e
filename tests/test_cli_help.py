"""The `vigia` command's help in Spanish (issue 15), from the message catalogues,
with English as the second language (VIGIA_LANG=en)."""

from __future__ import annotations

import os
import subprocess
import sys

import typer.main
from babel.messages.pofile import read_po

from core.i18n import LANGS, po_path
from vigia.cli import app


def _help(*args: str, lang: str | None = None) -> str:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("VIGIA_LANG", None)
    if lang:
        env["VIGIA_LANG"] = lang
    out = subprocess.run(
        [sys.executable, "-m", "vigia", *args, "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return out.stdout


def test_vigia_help_and_its_subcommands_are_spanish_by_default() -> None:
    top = _help()
    assert "Vigía: sensores, correlación, incidentes y certificación" in top
    assert "Comandos" in top and "Opciones" in top and "Mostrar esta ayuda y salir." in top
    assert "Tokens de acceso (se muestran una vez, se guardan como hash)." in top
    assert "Show this message" not in top and "Bearer tokens" not in top
    token = _help("token", "create")
    assert "Crear un token e imprimirlo" in token and "[obligatorio]" in token
    assert "quién o qué lo tiene" in token and "who or what holds it" not in token
    sensor = _help("sensor", "run")
    assert "capturar en vivo en esta interfaz" in sensor
    reports = _help("reports", "import")
    assert "poner en cola avisos a las entidades" in reports


def test_english_is_the_second_language() -> None:
    top = _help(lang="en")
    assert "Vigía: sensors, correlation, incidents and certification" in top
    assert "Commands" in top and "Show this message and exit." in top
    assert "who or what holds it" in _help("token", "create", lang="en")


def test_every_help_text_of_the_command_has_an_entry_in_each_catalogue() -> None:
    """A command or option added without its catalogue entries fails here."""
    keys: list[str] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        key = "cli." + (".".join(path) or "vigia")
        if getattr(command, "help", None):
            keys.append(key)
        for p in getattr(command, "params", []):
            if getattr(p, "help", None):
                keys.append(f"{key}.{p.name}")
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    assert len(keys) > 80
    for lang in LANGS:
        with po_path(lang).open("rb") as f:
            have = {str(m.id): str(m.string) for m in read_po(f) if m.id}
        missing = [k for k in keys if not have.get(k, "").strip()]
        assert not missing, f"{lang}: {missing}"
