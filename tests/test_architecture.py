"""The layer rules of DESIGN.md, as import-linter contracts, run with the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.skip("import-linter not installed")
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 kept, 0 broken" in r.stdout
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in conf["contracts"] if c["type"] == "layers"]
    assert "ignore_imports" not in layers  # no exceptions: the order holds as stated
    assert layers["layers"] == [
        "vigia",
        "api",
        "incidents | certification",
        "correlator",
        "rules",
        "sensors | core",
    ]


def test_sensor_package_imports_alone() -> None:
    """The appliance installs `sensors` without the server extra: nothing else is pulled in."""
    code = (
        "import sys, sensors.engine, sensors.pcapfile, sensors.observation; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('core','rules','correlator','incidents','certification','api','vigia','sqlalchemy',"
        "'fastapi','yara','pymisp')]; print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_services_container_holds_built_parts_only() -> None:
    """api.services.Services is what vigia.wiring.build made, and nothing more: no
    method or property that computes (the use cases and adapters are built by the
    root and injected as fields); `close` only releases the database."""
    import dataclasses

    from api.services import Services

    behaviour = {
        name
        for name, value in vars(Services).items()
        if not name.startswith("__") and (callable(value) or isinstance(value, property))
    }
    assert behaviour == {"close"}
    fields = {f.name for f in dataclasses.fields(Services)}
    assert {"take_in", "search_alerts", "warninglists", "mailer", "on_triaged"} <= fields
