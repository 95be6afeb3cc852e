"""Indicator verbs: import files, sync from MISP, export for Zeek or Suricata."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from vigia.commands import centre, fail
from vigia.commands.centre import CLI_ACTOR
from vigia.commands.progress import Progress, counted

indicators_app = typer.Typer(help="Indicators in the store.", no_args_is_help=True)


@indicators_app.command("import")
def indicators_import(
    paths: Annotated[list[Path], typer.Argument(help="indicator files or MISP feed folders")],
) -> None:
    """Load indicator files into the store and hunt the new ones back in time."""
    from rules.sources import IndicatorFileError, file_digest, stream_indicator_file

    s = centre.services()
    # Compiled (or read from its cache) in a thread, its child process, while the first
    # file is read (the intake screens what was read once they are there).
    s.warninglists.start()
    try:
        with s.db.transaction() as session:
            for p in paths:
                # A CSV is read as it is stored (no list of its records); the other
                # formats load whole first.
                r, stream = stream_indicator_file(p, strict=False)
                # A file's digest lets the intake skip it unread when it is unchanged
                # since its last import (correlator.unchanged); a folder is always read.
                r.digest, r.redigest = file_digest(p), partial(file_digest, p)
                with Progress() as bar:
                    r.stream = counted(stream, bar.task(f"importando {p.name}"))
                    intake = s.take_in(session, r, CLI_ACTOR)
                for line in r.rejected[:5]:  # what was left out, and where
                    typer.echo(f"rejected: {line}", err=True)
                if r.rejected and not intake.loaded:
                    fail(r.rejected[0])  # nothing usable: the transaction is rolled back
                skipped = sum(r.skipped.values())
                typer.echo(
                    f"{r.source} ({r.format}): {intake.loaded} indicators, {intake.new} new"
                    + (f", {skipped} skipped" if skipped else "")
                    + f"; retro-hunt: {intake.hunt.alerts} alerts from "
                    f"{intake.hunt.observations} stored observations",
                    err=True,
                )
    except IndicatorFileError as exc:
        fail(str(exc))


@indicators_app.command("sync")
def indicators_sync(
    misp_url: Annotated[
        str | None, typer.Option(help="MISP server (default VIGIA_MISP_URL)")
    ] = None,
    misp_key_file: Annotated[
        Path | None, typer.Option(help="file holding the MISP API key")
    ] = None,
    insecure: Annotated[bool, typer.Option(help="do not verify the server's certificate")] = False,
    full: Annotated[bool, typer.Option(help="ignore the last sync: fetch everything")] = False,
) -> None:
    """Pull published events from MISP (to_ids attributes), incrementally since the last sync."""
    from correlator import misp
    from rules.sources.mispsync import SyncError

    key = None
    if misp_key_file is not None:
        try:
            key = misp_key_file.read_text().strip()
        except OSError as exc:
            fail(f"{misp_key_file}: {exc.strerror}")
        if not key:
            fail(f"{misp_key_file}: empty")
    s = centre.services()
    try:
        server = misp.server(s.settings, misp_url, key, verify_tls=not insecure)
    except OSError as exc:
        fail(f"VIGIA_MISP_KEY_FILE: {exc}")
    if server is None:
        fail("no MISP server: give --misp-url and --misp-key-file (or VIGIA_MISP_*)")
    try:
        with Progress() as bar:
            out = misp.sync(s.db, s.take_in, server, full=full, actor=CLI_ACTOR, progress=bar.task)
    except SyncError as exc:
        fail(str(exc))
    typer.echo(
        f"{server.url}: {out.intake.loaded} indicators ({out.intake.new} new, "
        f"{out.skipped} skipped) since {out.since or 'the beginning'}; "
        f"retro-hunt: {out.intake.hunt.alerts} alerts",
        err=True,
    )


@indicators_app.command("export")
def indicators_export(
    fmt: Annotated[str, typer.Option("--format", help="zeek (a file) or suricata (a folder)")],
    out: Annotated[Path, typer.Argument(help="where to write")],
) -> None:
    """Write the active indicators for Zeek's intel framework or Suricata datasets."""
    from correlator.store import IndicatorStore
    from rules import export

    if fmt not in ("zeek", "suricata"):
        fail(f"unknown format {fmt!r}: zeek or suricata")
    s = centre.services()
    with s.db.transaction(write=False) as session:
        indicators = IndicatorStore.load_all(session)
    try:
        if fmt == "zeek":
            summary = export.zeek_intel(indicators, out)
        else:
            summary = export.suricata_datasets(indicators, out)
    except OSError as exc:
        fail(f"{out}: cannot write: {exc.strerror}")
    typer.echo(", ".join(f"{k}: {v}" for k, v in sorted(summary.items())), err=True)
