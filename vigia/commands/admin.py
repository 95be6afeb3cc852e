"""Admin verbs: bearer tokens and the audit chain."""

from __future__ import annotations

from typing import Annotated

import typer

from vigia.commands import centre, fail
from vigia.commands.centre import CLI_ACTOR

token_app = typer.Typer(help="Bearer tokens (shown once, stored hashed).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


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
    s = centre.services()
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

    s = centre.services()
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
    s = centre.services()
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
    s = centre.services()
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

    s = centre.services()
    with s.db.transaction(write=False) as session:
        typer.echo(str(audit.anchor(session)))
