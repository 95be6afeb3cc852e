"""`vigia entity notifications`: how an entity hears of incidents, per RSIT class."""

from __future__ import annotations

from typing import Annotated

import typer

from vigia.commands import fail
from vigia.commands.centre import CLI_ACTOR, services
from vigia.commands.entities import entity_app


@entity_app.command("notifications")
def entity_notifications(
    entity: Annotated[str, typer.Argument(help="entity id")],
    default: Annotated[
        str | None, typer.Option(help="immediate or digest, for the classes not listed")
    ] = None,
    by_class: Annotated[
        list[str] | None,
        typer.Option("--class", help="RSIT class=immediate|digest (repeatable)"),
    ] = None,
) -> None:
    """Show the entity's notification preferences; with --default, replace them."""
    from certification.registry import Registry
    from incidents import prefs
    from incidents.errors import IncidentError

    classes: dict[str, str] = {}
    for item in by_class or []:
        cls, _, mode = item.partition("=")
        if not mode:
            fail(f"--class {item}: write CLASS=immediate or CLASS=digest")
        classes[cls.strip()] = mode.strip()
    for given in [default, *classes.values()]:
        if given is not None and given not in ("immediate", "digest"):
            fail(f"{given}: immediate or digest")
    if classes and default is None:
        fail("--class needs --default (the preferences are replaced as a whole)")
    s = services()
    with s.db.transaction(write=default is not None) as session:
        if Registry.get(session, entity) is None:
            fail(f"no entity {entity}")
        if default is None:
            held = prefs.get(session, entity)
        else:
            try:
                held = prefs.put(session, entity, default, classes, CLI_ACTOR)
            except IncidentError as exc:
                fail(str(exc))
    typer.echo(f"*\t{held['default']}")
    for cls, mode in held["classes"].items():
        typer.echo(f"{cls}\t{mode}")
