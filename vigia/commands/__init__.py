"""One module per group of `vigia` verbs."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then exit: the contract for bad usage or input."""
    typer.echo(f"vigia: {message}", err=True)
    sys.exit(code)
