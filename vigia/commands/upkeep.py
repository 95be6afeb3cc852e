"""Upkeep of an installation's data: backup, restore, the Elasticsearch mirror's set-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vigia.commands import centre, fail


def backup_command(
    out: Annotated[Path, typer.Argument(help="the .tar.gz to write")],
) -> None:
    """Back up the embedded store (database, secret, evidence, local rules), live."""
    from core.settings import SettingsError, load_settings
    from vigia.backup import BackupError, backup

    try:
        s = load_settings()
        m = backup(s.data_dir, s.database_url, out)
    except (SettingsError, BackupError) as exc:
        fail(str(exc))
    typer.echo(f"{out}: database sha256 {m.database_sha256[:16]}…, {m.files} other files", err=True)


def restore_command(
    archive: Annotated[Path, typer.Argument(help="a file written by `vigia backup`")],
    force: Annotated[bool, typer.Option(help="overwrite an existing database")] = False,
) -> None:
    """Restore a backup into the data dir, then check the audit chain."""
    from core import audit
    from core.settings import SettingsError, load_settings
    from vigia.backup import BackupError, restore

    try:
        s = load_settings()
        m = restore(archive, s.data_dir, force, s.secret_key)
    except (SettingsError, BackupError) as exc:
        fail(str(exc))
    svc = centre.services()
    with svc.db.transaction(write=False) as session:
        verdict = audit.verify(session)
    svc.close()
    if not verdict.ok:
        fail(f"restored, but the audit chain is broken: {verdict.problem}", code=1)
    typer.echo(
        f"restored the backup of {m.created}; audit chain intact ({verdict.records} records)",
        err=True,
    )


es_app = typer.Typer(help="The Elasticsearch mirror.", no_args_is_help=True)


@es_app.command("init")
def es_init() -> None:
    """Create or update the index templates, the alerts index and the data stream."""
    from core.settings import SettingsError, load_settings
    from correlator.esstore import EsError
    from vigia.wiring import es_store

    try:
        es = es_store(load_settings())
    except SettingsError as exc:
        fail(str(exc))
    if es is None:
        fail("VIGIA_ELASTICSEARCH_URL is not set")
    from correlator import esindicators

    try:
        done = es.init() + esindicators.init(es)
    except EsError as exc:
        fail(str(exc))
    typer.echo(", ".join(done) + " (up to date)", err=True)
