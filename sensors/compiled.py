"""Which modules run compiled, and whether their builds are current.

setup.py compiles MODULES with mypyc: the sensor's per-packet path (about 3x)
and the centre's indicator lookups (correlator.lookups), each group its own
library. The extension sits beside its .py and Python imports the extension
first, so an edited .py is not what runs until the next build: `stale()`
names those modules, and the sensor command and the tests say so.
This module itself stays plain Python: setup.py reads it before any build.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
from pathlib import Path

# The per-packet path: decoding, the flow table, reassembly, the analyzers (each
# inherits sensors.analyzer.Analyzer: compiled together, the engine calls them
# through a vtable). The detection table (sensors.protocols) is read once: plain.
MODULES = (
    "sensors.analyzer",
    "sensors.decode",
    "sensors.engine",
    "sensors.flow",
    "sensors.flowhash",
    "sensors.fragments",
    "sensors.observation",
    "sensors.pcapfile",
    "sensors.prefilter",
    "sensors.reassembly",
    "sensors.report",
    "sensors.extract.dns",
    "sensors.extract.ftp",
    "sensors.extract.http",
    "sensors.extract.multipart",
    "sensors.extract.smb",
    "sensors.extract.smtp",
    "sensors.extract.tls",
    # The centre's per-value loops of an indicator lookup (correlator.index keeps
    # the tables, plain): compiled in their own group, the sensor's not rebuilt.
    "correlator.lookups",
)
_ROOT = Path(__file__).resolve().parent.parent
BUILD_RECORD = "sensors/_build.json"  # written by setup.py: each source's SHA-256 when built


def _source(module: str) -> str:
    return module.replace(".", "/") + ".py"


def sources() -> list[str]:
    """MODULES as paths relative to the project root, as mypyc wants them."""
    return [_source(m) for m in MODULES]


def groups() -> list[tuple[list[str], str | None]]:
    """mypyc's compilation groups, as setup.py passes them: (sources, library name)."""
    centre = [_source(m) for m in MODULES if not m.startswith("sensors.")]
    return [([s for s in sources() if s not in centre], "vigia_sensors"), (centre, "vigia_centre")]


def digests(root: Path) -> dict[str, str]:
    """Each compiled source's SHA-256, by its path: setup.py records them at build
    time (BUILD_RECORD), stale() compares them with the sources present."""
    return {s: hashlib.sha256((root / s).read_bytes()).hexdigest() for s in sources()}


def is_compiled(module: str = "sensors.engine") -> bool:
    """Whether `module` would be imported from its extension."""
    spec = importlib.util.find_spec(module)
    return spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)


def stale() -> list[str]:
    """Compiled modules whose source is not the one built (the old build runs).

    setup.py records each source's SHA-256 at build time (BUILD_RECORD);
    contents, not file times, which an install does not keep.
    """
    compiled = [m for m in MODULES if is_compiled(m)]
    if not compiled:
        return []
    try:
        built = json.loads((_ROOT / BUILD_RECORD).read_text())
    except (OSError, ValueError):
        return compiled  # built by something that kept no record: say so
    now = digests(_ROOT)
    return [m for m in compiled if built.get(_source(m)) != now[_source(m)]]


def main() -> int:
    """`python -m sensors.compiled`: exit 1 when a build is missing or stale."""
    old = stale()
    if old:
        print("stale builds (run: python setup.py build_ext --inplace):", ", ".join(old))
        return 1
    if not is_compiled():
        print("the sensor engine is not compiled: it runs as plain Python")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
