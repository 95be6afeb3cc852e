"""`vigia reports`: external reports (Shadowserver, abuse.ch, phishing lists, generic
CSV) taken in by hand, the formats known, and the findings no entity claims."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vigia.commands import fail
from vigia.commands.centre import CLI_ACTOR, services

if TYPE_CHECKING:
    from incidents.reports.intake import Summary

reports_app = typer.Typer(
    help="External reports: Shadowserver, abuse.ch, phishing lists, generic CSV.",
    no_args_is_help=True,
)
SHOWN_UNATTRIBUTED = 20


def _ids(ids: list[int]) -> str:
    return f" ({', '.join(f'#{i}' for i in ids)})" if ids else ""


def print_summary(s: Summary) -> None:
    typer.echo(
        f"registros: {s.records} (duplicados {s.duplicates}, sin equipo {s.ignored}, "
        f"ilegibles {s.rejected})"
    )
    typer.echo(
        f"entidades: {len(s.entities)}"
        + (f" ({', '.join(sorted(s.entities))})" if s.entities else "")
    )
    typer.echo(
        f"incidentes: {len(s.opened)} abiertos{_ids(s.opened)}, "
        f"{len(s.updated)} actualizados{_ids(s.updated)}"
    )
    typer.echo(f"sin atribuir: {s.unattributed}")
    for kind, value in s.unattributed_sample[:SHOWN_UNATTRIBUTED]:
        typer.echo(f"  {kind}\t{value}")
    if s.unattributed > SHOWN_UNATTRIBUTED:
        typer.echo(f"  … y {s.unattributed - SHOWN_UNATTRIBUTED} más (vigia reports unattributed)")
    typer.echo(f"notificaciones en cola: {s.notices}")


@reports_app.command("import")
def reports_import(
    paths: Annotated[list[Path], typer.Argument(help="report files or folders of them")],
    format_: Annotated[
        str | None,
        typer.Option("--format", help="format name (vigia reports formats); else recognised"),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="a generic CSV's column mapping (JSON)")
    ] = None,
    notify: Annotated[bool, typer.Option(help="queue notices to the entities")] = True,
) -> None:
    """Take report files in (same rules as the scheduled intake) and say what came in."""
    from incidents.reports.formats import FormatError
    from vigia import reports

    try:
        fmt = reports.chosen_format(format_, mapping)
        files = reports.expand(paths)
    except FormatError as exc:
        fail(str(exc))
    s = services()
    try:
        summary = reports.import_files(s, files, fmt, notify=notify, actor=CLI_ACTOR)
    except FormatError as exc:
        fail(str(exc))
    print_summary(summary)


@reports_app.command("formats")
def reports_formats() -> None:
    """Every format --format takes (Shadowserver's as shadowserver:TYPE)."""
    from incidents.reports.formats import names

    for n in names():
        typer.echo(n)


@reports_app.command("unattributed")
def reports_unattributed(
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 1000,
) -> None:
    """Findings no entity's networks or domains hold, as CSV on stdout."""
    from incidents.reports.hosts import unattributed, unattributed_csv

    s = services()
    with s.db.transaction(write=False) as session:
        rows = unattributed(session, limit=limit)
        typer.echo(unattributed_csv(rows), nl=False)
