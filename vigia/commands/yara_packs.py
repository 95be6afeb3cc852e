"""YARA pack verbs: check that packs validate and compile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vigia.commands import fail

rules_app = typer.Typer(help="YARA rule packs.", no_args_is_help=True)


@rules_app.command("check")
def rules_check(
    paths: Annotated[list[Path] | None, typer.Argument(help="rule files or folders")] = None,
) -> None:
    """Validate and compile YARA packs (the shipped ones by default); file:line on error."""
    from importlib import resources

    from rules.yarapack import YaraPackError, compile_pack

    shipped = Path(str(resources.files("rules").joinpath("packs")))
    targets = list(paths) if paths else [shipped]
    try:
        pack = compile_pack(targets)
    except YaraPackError as exc:
        fail(str(exc))
    names = [r.identifier for r in pack.rules]
    typer.echo(
        f"{pack.name}@{pack.version}: {len(pack.files)} file(s), {len(names)} rules: "
        + ", ".join(names)
    )
