"""`vigia ARGS` run inside the test process, through Click's runner.

The same command code, exit code, stdout and stderr as `python -m vigia ARGS`, without
a new interpreter's imports (~1.2-1.6 s of CPU a process). Each test that uses it keeps
at least one real process for the contract it checks (tests/test_backup_logs.py,
tests/test_security_data.py). A traceback cannot hide here: an exception other than
SystemExit is raised again in the test instead of becoming exit code 1."""

from __future__ import annotations

import subprocess
from pathlib import Path

from typer.testing import CliRunner

from vigia.cli import app
from vigia.commands import centre
from vigia.wiring import Services


def in_process(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`vigia ARGS` with VIGIA_DATA_DIR=data and no VIGIA_DATABASE_URL (as the modules'
    own _vigia helpers run it); the services a verb built are closed afterwards."""
    built: list[Services] = []
    real = centre.services

    def tracked() -> Services:
        s = real()
        built.append(s)
        return s

    centre.services = tracked
    try:
        variables: dict[str, str | None] = {
            **env,
            "VIGIA_DATA_DIR": str(data),
            "VIGIA_DATABASE_URL": None,
        }
        if "VIGIA_DATABASE_URL" in env:
            variables["VIGIA_DATABASE_URL"] = env["VIGIA_DATABASE_URL"]
        r = CliRunner().invoke(app, list(args), env=variables)
    finally:
        centre.services = real
        for s in built:
            s.close()
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return subprocess.CompletedProcess(["vigia", *args], r.exit_code, r.stdout, r.stderr)
