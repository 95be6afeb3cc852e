"""The centre as an admin verb builds it (its services, from the settings), and the
actor the verbs' audit records name.

Verbs call `centre.services()` through this module: tests/vigia_cli.py swaps it to
close what a verb built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigia.commands import fail

if TYPE_CHECKING:  # the sensor appliance runs this CLI without the server extra
    from vigia.wiring import Services

CLI_ACTOR = "cli:local-admin"


def services() -> Services:
    from core.settings import SettingsError, load_settings
    from vigia.wiring import build

    try:
        return build(load_settings())
    except SettingsError as exc:
        fail(str(exc))
