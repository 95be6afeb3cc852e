"""Entity verbs: the constituency's public entities (add, list, CSV import and export)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vigia.commands import centre, fail
from vigia.commands.centre import CLI_ACTOR

entity_app = typer.Typer(help="The constituency: public entities.", no_args_is_help=True)


@entity_app.command("add")
def entity_add(
    entity_id: Annotated[str, typer.Argument(help="short id, e.g. min-salud")],
    name: Annotated[str, typer.Option(help="official name")],
    level: Annotated[str, typer.Option(help="central, departmental, municipal, ...")] = "central",
    network: Annotated[list[str] | None, typer.Option(help="CIDR (repeatable)")] = None,
    domain: Annotated[list[str] | None, typer.Option(help="domain (repeatable)")] = None,
) -> None:
    """Register a public entity with its networks and domains."""
    from certification.registry import EntityError, Registry

    s = centre.services()
    with s.db.transaction() as session:
        try:
            Registry.add(session, entity_id, name, level, network or [], domain or [], CLI_ACTOR)
        except EntityError as exc:
            fail(str(exc))
    typer.echo(entity_id)


@entity_app.command("list")
def entity_list() -> None:
    from certification.registry import Registry

    s = centre.services()
    with s.db.transaction(write=False) as session:
        for e in Registry.all(session):
            typer.echo(
                f"{e.id}\t{e.level}\t{e.name}\t{','.join(e.networks)}\t{','.join(e.domains)}"
            )


@entity_app.command("import")
def entity_import(
    csv_file: Annotated[Path, typer.Argument(help="CSV with the columns of `vigia entity export`")],
) -> None:
    """Add and update entities from CSV; bad rows are listed (file:line) and skipped."""
    from certification import registry_csv
    from certification.registry import EntityError

    try:
        text = csv_file.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{csv_file}: cannot read: {exc}")
    s = centre.services()
    with s.db.transaction() as session:
        try:
            result = registry_csv.import_csv(session, text, CLI_ACTOR)
        except EntityError as exc:
            fail(f"{csv_file}: {exc}")
    for line in result.rejected:
        typer.echo(f"{csv_file}:{line.removeprefix('line ')}", err=True)
    typer.echo(
        f"{result.added} added, {result.updated} updated, {result.unchanged} unchanged, "
        f"{len(result.rejected)} rejected",
        err=True,
    )
    if result.rejected and not (result.added or result.updated or result.unchanged):
        raise typer.Exit(2)


@entity_app.command("export")
def entity_export() -> None:
    """The registry as CSV on stdout."""
    from certification import registry_csv

    s = centre.services()
    with s.db.transaction(write=False) as session:
        typer.echo(registry_csv.export(session), nl=False)
