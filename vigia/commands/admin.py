"""Admin verbs: tokens, the audit chain, indicators and entities."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vigia.commands import fail

if TYPE_CHECKING:  # the sensor appliance runs this CLI without the server extra
    from vigia.wiring import Services

token_app = typer.Typer(help="Bearer tokens (shown once, stored hashed).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
indicators_app = typer.Typer(help="Indicators in the store.", no_args_is_help=True)
entity_app = typer.Typer(help="The constituency: public entities.", no_args_is_help=True)
rules_app = typer.Typer(help="YARA rule packs.", no_args_is_help=True)

CLI_ACTOR = "cli:local-admin"


def services() -> Services:
    from core.settings import SettingsError, load_settings
    from vigia.wiring import build

    try:
        return build(load_settings())
    except SettingsError as exc:
        fail(str(exc))


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, analyst, entity, sensor, auditor or peer")],
    entity: Annotated[str | None, typer.Option(help="entity id (entity tokens only)")] = None,
    name: Annotated[str, typer.Option(help="who or what holds it")] = "",
) -> None:
    """Create a token and print it, alone, on stdout."""
    from certification.registry import Registry
    from core.tokens import Role, TokenError

    try:
        r = Role(role)
    except ValueError:
        fail(f"unknown role {role!r}: one of {', '.join(x.value for x in Role)}")
    s = services()
    with s.db.transaction() as session:
        if entity and Registry.get(session, entity) is None:
            fail(f"no entity {entity!r} (see `vigia entity list`)")
        try:
            token, row = s.tokens.create(session, r, name or r.value, entity, CLI_ACTOR)
        except TokenError as exc:
            fail(str(exc))
    typer.echo(f"token id {row.id} (for `vigia token revoke`)", err=True)
    typer.echo(token)


@token_app.command("list")
def token_list(
    all_: Annotated[bool, typer.Option("--all", help="revoked tokens too")] = False,
) -> None:
    """The tokens: id, role, entity, name, created, revoked (never the token or its hash)."""
    from sqlalchemy import select

    from core.tokens import TokenRow

    s = services()
    with s.db.transaction(write=False) as session:
        q = select(TokenRow).order_by(TokenRow.created_at, TokenRow.id)
        if not all_:
            q = q.where(TokenRow.revoked_at.is_(None))
        rows = session.execute(q).scalars().all()
    # No last use: recording it would be a write on every request (SQLite's one writer).
    typer.echo("id\trole\tentity\tname\tcreated\trevoked")
    for t in rows:
        typer.echo(
            "\t".join(
                [
                    t.id,
                    t.role,
                    t.entity_id or "-",
                    t.name,
                    _when(t.created_at),
                    _when(t.revoked_at),
                ]
            )
        )


def _when(ts: object) -> str:
    from datetime import datetime

    from core.clock import iso

    return iso(ts) if isinstance(ts, datetime) else "-"


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id."""
    s = services()
    with s.db.transaction() as session:
        if not s.tokens.revoke(session, token_id, CLI_ACTOR):
            fail(f"no active token with id {token_id!r}")
    typer.echo(f"revoked {token_id}", err=True)


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None,
        typer.Option(help="SEQ:DIGEST from `vigia audit anchor`: the chain must still hold it"),
    ] = None,
) -> None:
    """Walk the chain: exit 0 if intact, 1 naming the first broken record."""
    from core import audit

    against = None
    if anchor is not None:
        try:
            against = audit.Anchor.parse(anchor)
        except ValueError as exc:
            fail(f"--anchor: {exc}")
    s = services()
    with s.db.transaction(write=False) as session:
        verdict = audit.verify(session, against=against)
    if not verdict.ok:
        typer.echo(f"vigia: audit chain broken: {verdict.problem}", err=True)
        raise typer.Exit(1)
    legacy = f" ({verdict.legacy} from before keying)" if verdict.legacy else ""
    held = f"; holds the anchor at record {against.seq}" if against else ""
    typer.echo(f"audit chain intact: {verdict.records} records{legacy}{held}")


@audit_app.command("anchor")
def audit_anchor() -> None:
    """Print the chain's head as SEQ:DIGEST, to keep outside this installation; later,
    `vigia audit verify --anchor SEQ:DIGEST` shows the history up to it is untouched."""
    from core import audit

    s = services()
    with s.db.transaction(write=False) as session:
        typer.echo(str(audit.anchor(session)))


@indicators_app.command("import")
def indicators_import(
    paths: Annotated[list[Path], typer.Argument(help="indicator files or MISP feed folders")],
) -> None:
    """Load indicator files into the store and hunt the new ones back in time."""
    from rules.sources import IndicatorFileError, file_digest, stream_indicator_file

    s = services()
    # Compiled (or read from its cache) in a thread, its child process, while the first
    # file is read (the intake screens what was read once they are there).
    s.warninglists.start()
    try:
        with s.db.transaction() as session:
            for p in paths:
                # A CSV is read as it is stored (no list of its records); the other
                # formats load whole first.
                r, stream = stream_indicator_file(p, strict=False)
                r.stream = stream
                # A file's digest lets the intake skip it unread when it is unchanged
                # since its last import (correlator.unchanged); a folder is always read.
                r.digest, r.redigest = file_digest(p), partial(file_digest, p)
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
    s = services()
    try:
        server = misp.server(s.settings, misp_url, key, verify_tls=not insecure)
    except OSError as exc:
        fail(f"VIGIA_MISP_KEY_FILE: {exc}")
    if server is None:
        fail("no MISP server: give --misp-url and --misp-key-file (or VIGIA_MISP_*)")
    try:
        out = misp.sync(s.db, s.take_in, server, full=full, actor=CLI_ACTOR)
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
    s = services()
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

    s = services()
    with s.db.transaction() as session:
        try:
            Registry.add(session, entity_id, name, level, network or [], domain or [], CLI_ACTOR)
        except EntityError as exc:
            fail(str(exc))
    typer.echo(entity_id)


@entity_app.command("list")
def entity_list() -> None:
    from certification.registry import Registry

    s = services()
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
    s = services()
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

    s = services()
    with s.db.transaction(write=False) as session:
        typer.echo(registry_csv.export(session), nl=False)


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
    svc = services()
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
