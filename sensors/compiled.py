"""Which sensor modules run compiled, and whether their builds are current.

setup.py compiles MODULES with mypyc (about 2x on the per-packet path). In a
source checkout the extension sits beside its .py and Python imports the
extension first, so an edited .py is not what runs until the next build:
`stale()` names those modules, and the sensor command and the tests say so.
This module itself stays plain Python: setup.py reads it before any build.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

# The per-packet path: decoding, the flow table, reassembly, the parsers every flow sees.
MODULES = (
    "sensors.decode",
    "sensors.engine",
    "sensors.flow",
    "sensors.flowhash",
    "sensors.fragments",
    "sensors.observation",
    "sensors.pcapfile",
    "sensors.prefilter",
    "sensors.reassembly",
    "sensors.extract.dns",
    "sensors.extract.http",
    "sensors.extract.tls",
)
_ROOT = Path(__file__).resolve().parent.parent


def sources() -> list[str]:
    """MODULES as paths relative to the project root, as mypyc wants them."""
    return [m.replace(".", "/") + ".py" for m in MODULES]


def _extension(module: str) -> Path | None:
    base = _ROOT / module.replace(".", "/")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if base.with_name(base.name + suffix).exists():
            return base.with_name(base.name + suffix)
    return None


def is_compiled(module: str = "sensors.engine") -> bool:
    """Whether `module` would be imported from its extension."""
    spec = importlib.util.find_spec(module)
    return spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)


def stale() -> list[str]:
    """Compiled modules whose source changed after their build (the old build runs)."""
    out = []
    for module in MODULES:
        ext = _extension(module)
        source = _ROOT / (module.replace(".", "/") + ".py")
        if ext is not None and source.stat().st_mtime > ext.stat().st_mtime:
            out.append(module)
    return out


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
