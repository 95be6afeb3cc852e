"""`vigia` on a sensor appliance (the base install and the `sensor` extra): a verb of
the centre says in one line which extra to install and exits 2, never a
ModuleNotFoundError traceback (issue 12 point 6); the sensor's own modules import.

The sensor-only environment is real: a virtualenv holding only the requirements
pyproject.toml lists for the base and the `sensor` extra, installed by pip from
the configured index, with this checkout on PYTHONPATH (no editable install: its
build would compile the sensor with mypyc). Creating it takes ~80 s on the 2-core
test machine, so it is made once and kept, keyed by those requirements and the
Python version, under $VIGIA_TEST_CACHE (default ~/.cache/vigia-tests); later
runs take seconds.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT, corpus
from vigia.commands import IMPORT_NAMES, extra_needed, extras_of_modules, missing_extra

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CACHE = Path(os.environ.get("VIGIA_TEST_CACHE", Path.home() / ".cache" / "vigia-tests"))
PACKAGES = ("core", "sensors", "rules", "correlator", "incidents", "certification", "api", "vigia")
LINE = re.compile(
    r"^vigia: «vigia (?P<verb>[a-z]+)» necesita el extra server de Vigía "
    r"\(falta el módulo (?P<module>[A-Za-z0-9_.]+)\); "
    r"instálelo con: pip install 'vigia\[server\]'$"
)


def _sensor_requirements() -> list[str]:
    return [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["sensor"]]


@pytest.fixture(scope="module")
def sensor_python() -> Path:
    """The python of a virtualenv with the sensor install's requirements only."""
    reqs = _sensor_requirements()
    key = hashlib.sha256("\n".join([sys.version, *sorted(reqs)]).encode()).hexdigest()[:12]
    venv = CACHE / f"sensor-only-{key}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *reqs],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if pip.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.skip(f"cannot install the sensor's requirements: {pip.stderr[-300:]}")
        (venv / ".complete").write_text("\n".join(reqs))
    return python


def _run(python: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "VIGIA_DATA_DIR": str(tmp_path / "data"),
    }
    return subprocess.run(
        [str(python), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_the_sensor_environment_really_lacks_the_server_extra(
    sensor_python: Path, tmp_path: Path
) -> None:
    for module in ("pytricia", "sqlalchemy", "fastapi", "pymisp"):
        r = _run(sensor_python, tmp_path, "-c", f"import {module}")
        assert r.returncode == 1 and "ModuleNotFoundError" in r.stderr, module
    # ...and the sensor's own code imports there: capture, extraction, shipping, YARA.
    r = _run(sensor_python, tmp_path, "-c", "import sensors.runner, sensors.ship, yara")
    assert r.returncode == 0, r.stderr
    r = _run(sensor_python, tmp_path, "-m", "vigia", "sensor", "run", "--help")
    assert r.returncode == 0 and "--pcap" in r.stdout, r.stderr


def test_vigia_scan_on_the_sensor_install_names_the_extra_in_one_line(
    sensor_python: Path, tmp_path: Path
) -> None:
    pcap = corpus("zeek-traces", "dns-http", "opt.basic", "pcap", "wikipedia.pcap")
    indicators = tmp_path / "iocs.csv"
    indicators.write_text("type,value\ndomain,en.wikipedia.org\n")
    r = _run(sensor_python, tmp_path, "-m", "vigia", "scan", str(pcap), "-i", str(indicators))
    assert r.returncode == 2
    assert r.stdout == ""
    [line] = r.stderr.splitlines()  # one line, no traceback
    m = LINE.match(line)
    assert m is not None, line
    assert m["verb"] == "scan"
    # The module named is one the server extra brings and this install lacks.
    assert "server" in extras_of_modules()[m["module"].split(".")[0]]


@pytest.mark.parametrize(
    "args",
    [
        ["serve"],
        ["up"],
        ["token", "create", "--role", "sensor", "--name", "s1"],
        ["token", "list"],
        ["indicators", "import", "iocs.csv"],
        ["indicators", "export", "--format", "zeek", "out.intel"],
        ["entity", "list"],
        ["audit", "verify"],
        ["es", "init"],
        ["backup", "out.tar.gz"],
        ["restore", "out.tar.gz"],
    ],
    ids=lambda a: "-".join(a[:2]),
)
def test_every_verb_of_the_centre_says_which_extra(
    sensor_python: Path, tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "iocs.csv").write_text("type,value\ndomain,evil.example\n")
    (tmp_path / "out.tar.gz").write_bytes(b"")
    r = _run(sensor_python, tmp_path, "-m", "vigia", *args)
    assert r.returncode == 2, r.stderr
    [line] = r.stderr.splitlines()
    m = LINE.match(line)
    assert m is not None and m["verb"] == args[0], line


def _third_party_imports() -> set[str]:
    """Every top-level module Vigía's packages import that is neither stdlib nor ours."""
    ours = set(PACKAGES)
    found: set[str] = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                found.update(n.split(".")[0] for n in names)
    return {m for m in found if m not in ours and m not in sys.stdlib_module_names}


def test_every_module_vigia_imports_is_a_base_dependency_or_in_an_extra() -> None:
    """The guard names an extra only for modules it knows: one imported from a new
    dependency without a line in pyproject.toml (or IMPORT_NAMES) fails here."""
    base: set[str] = set()
    for req in PROJECT["dependencies"]:
        match = re.match(r"[A-Za-z0-9._-]+", req)
        assert match is not None
        dist = match.group(0).lower()
        base.update(IMPORT_NAMES.get(dist, (dist.replace("-", "_"),)))
    known = base | set(extras_of_modules())
    assert _third_party_imports() - known == set()


def test_the_extra_named_fits_the_verb() -> None:
    def gone(name: str) -> ModuleNotFoundError:
        return ModuleNotFoundError(f"No module named {name!r}", name=name)

    assert missing_extra(gone("pytricia"), "scan") == "server"
    assert missing_extra(gone("sqlalchemy.orm"), "token") == "server"
    # yara-python is in both: the sensor's verbs ask for the sensor extra.
    assert missing_extra(gone("yara"), "sensor") == "sensor"
    assert missing_extra(gone("yara"), "scan") == "server"
    # A module no extra brings is a bug, not an install to complete: raised as it is.
    assert missing_extra(gone("nonexistent_mod"), "scan") is None
    with pytest.raises(ModuleNotFoundError):
        extra_needed(gone("nonexistent_mod"), ["scan"])
