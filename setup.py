"""Build hook: compile the sensor's per-packet path with mypyc.

The sensor's hot modules are plain, mypy-checked Python; mypyc turns them into
C extensions (about 1.8x on a pcap, see bench/pcap_vs_tshark.py). Everything
else, and the metadata, is in pyproject.toml. Set VIGIA_PURE_PYTHON=1 to
install without compiling (a platform without a C compiler): the same code
then runs as Python, slower.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sensors.compiled import sources  # the list of modules, kept with the sensor


class BuildExt(build_ext):
    """Stamp each in-place extension with the build's time.

    setuptools leaves an extension untouched when mypyc's C did not change (a
    comment edited), so its time would say "older than the source" wrongly:
    sensors.compiled.stale() compares these times.
    """

    def run(self) -> None:
        super().run()
        if self.inplace:
            for ext in self.extensions:
                path = self.get_ext_fullpath(ext.name)
                if os.path.exists(path):
                    os.utime(path)


def _extensions() -> list:
    if os.environ.get("VIGIA_PURE_PYTHON") == "1":
        return []
    from mypyc.build import mypycify

    return mypycify(sources(), opt_level="3", group_name="vigia_sensors")


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
