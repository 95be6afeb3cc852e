"""One module per group of `vigia` verbs."""

from __future__ import annotations

import re
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then exit: the contract for bad usage or input."""
    typer.echo(f"vigia: {message}", err=True)
    sys.exit(code)


# Distributions whose import name is not their own name, lower-cased with `_` for `-`
# (tests/test_cli_extras.py checks every module Vigía imports is covered).
IMPORT_NAMES = {
    "yara-python": ("yara",),
    "pyyaml": ("yaml",),
    "python-multipart": ("multipart", "python_multipart"),
    "stix2-patterns": ("stix2patterns",),
    "fpdf2": ("fpdf",),
    "fastapi": ("fastapi", "starlette"),  # starlette comes with FastAPI; the API imports both
}
OPTIONAL = ("sensor", "server")  # the extras a user installs (dev is the project's own)


def _optional_requirements() -> dict[str, list[str]]:
    """{extra: its requirement strings}: from pyproject.toml in a source checkout (an
    editable install's metadata lags behind edits of it), else the installed metadata."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        if project.get("name") == "vigia":
            extras = project.get("optional-dependencies", {})
            return {e: list(extras.get(e, [])) for e in OPTIONAL}
    try:
        requires = metadata.requires("vigia") or []
    except metadata.PackageNotFoundError:
        return {}
    out: dict[str, list[str]] = {}
    for req in requires:
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", req)
        if extra is not None and extra.group(1) in OPTIONAL:
            out.setdefault(extra.group(1), []).append(req)
    return out


@cache
def extras_of_modules() -> dict[str, frozenset[str]]:
    """{top-level module: the extras that bring it}."""
    out: dict[str, set[str]] = {}
    for extra, requires in _optional_requirements().items():
        for req in requires:
            name = re.match(r"[A-Za-z0-9._-]+", req)
            if name is None:
                continue
            dist = name.group(0).lower()
            for module in IMPORT_NAMES.get(dist, (dist.replace("-", "_").replace(".", "_"),)):
                out.setdefault(module, set()).add(extra)
    return {m: frozenset(e) for m, e in out.items()}


def missing_extra(exc: ModuleNotFoundError, command: str) -> str | None:
    """The extra to install for the module this command could not import, or None
    when the module is no optional dependency of Vigía (a real bug: let it show)."""
    extras = extras_of_modules().get((exc.name or "").split(".")[0])
    if not extras:
        return None
    if command == "sensor" and "sensor" in extras:
        return "sensor"
    return "server" if "server" in extras else sorted(extras)[0]


def extra_needed(exc: ModuleNotFoundError, argv: list[str]) -> NoReturn:
    """Exit 2 with one line naming the extra this command needs (the sensor appliance
    installs only the base and `sensor`); re-raise what no extra brings."""
    command = next((a for a in argv if not a.startswith("-")), "")
    extra = missing_extra(exc, command)
    if extra is None:
        raise exc
    fail(
        f"«vigia {command}» necesita el extra {extra} de Vigía (falta el módulo {exc.name}); "
        f"instálelo con: pip install 'vigia[{extra}]'"
    )
