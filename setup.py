"""Build hook: compile the sensor's per-packet path and the centre's indicator
lookups with mypyc.

The hot modules (sensors/compiled.py lists them) are plain, mypy-checked
Python; mypyc turns them into C extensions (about 3x on a pcap, see
bench/pcap_vs_tshark.py; less on the lookups, whose time is mostly memory).
Everything else, and the metadata, is in pyproject.toml. Set VIGIA_PURE_PYTHON=1 to
install without compiling (a platform without a C compiler): the same code
then runs as Python, slower.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sensors.compiled import BUILD_RECORD, digests, groups, sources  # kept with the sensor


class BuildExt(build_ext):
    """After the build, record each compiled source's SHA-256 beside the package.

    sensors.compiled.stale() compares them with the sources present: an edited
    source is not what runs until the next build (its extension is imported
    first), and the sensor command and the tests say so.
    """

    def run(self) -> None:
        super().run()
        if not self.extensions:
            return
        root = os.path.dirname(os.path.abspath(__file__))
        target = root if self.inplace else self.build_lib
        with open(os.path.join(target, BUILD_RECORD), "w") as fh:
            json.dump(digests(Path(root)), fh, indent=1, sort_keys=True)


def _extensions() -> list:
    if os.environ.get("VIGIA_PURE_PYTHON") == "1":
        return []
    from mypyc.build import mypycify

    return mypycify(sources(), opt_level="3", separate=groups())


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
