"""The `vigia` command line. Exit codes: 0 ok, 1 findings-level failure, 2 bad usage or input.

Each verb lives in its own module under `vigia.commands` and imports what it
needs when it runs, so `vigia --help` and the sensor appliance stay light.
"""

from __future__ import annotations

import sys

import typer
import typer.main

from vigia import clihelp
from vigia.commands import (
    admin,
    entities,
    extra_needed,
    indicators,
    reports,
    scan,
    sensor,
    server,
    upkeep,
    yara_packs,
)
from vigia.commands import notify_prefs as _notify_prefs  # noqa: F401 (an `entity` verb)

app = typer.Typer(
    name="vigia",
    no_args_is_help=True,
    add_completion=False,
    help="Vigía: sensors, correlation, incidents and certification for a national CERT.",
    pretty_exceptions_enable=False,
)
app.command("scan")(scan.scan_command)
app.command("up")(server.up_command)
app.command("serve")(server.serve_command)
app.command("backup")(upkeep.backup_command)
app.command("restore")(upkeep.restore_command)
app.add_typer(admin.token_app, name="token")
app.add_typer(admin.audit_app, name="audit")
app.add_typer(indicators.indicators_app, name="indicators")
app.add_typer(entities.entity_app, name="entity")
app.add_typer(yara_packs.rules_app, name="rules")
app.add_typer(upkeep.es_app, name="es")
app.add_typer(sensor.sensor_app, name="sensor")
app.add_typer(reports.reports_app, name="reports")


def main() -> None:
    try:
        lang = clihelp.language()
        clihelp.panels(lang)
        command = clihelp.localise(typer.main.get_command(app), lang)
        command(prog_name="vigia")
    except KeyboardInterrupt:
        sys.exit(130)
    except ModuleNotFoundError as exc:  # a verb of an extra not installed: say which
        extra_needed(exc, sys.argv[1:])
