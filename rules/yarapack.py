"""YARA rules from files or folders: validated per file, compiled together.

A file that does not compile refuses the whole set, naming the file and line,
so a running set is only ever replaced by one that fully compiles.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yara

YARA_SUFFIXES = (".yar", ".yara", ".rule", ".rules")
_LINE = re.compile(r"\((\d+)\): (.*)$")


class YaraPackError(Exception):
    """One line: `file:line: reason`."""


@dataclass(frozen=True)
class YaraPack:
    rules: yara.Rules
    files: tuple[Path, ...]
    version: str  # sha256 of the sources, short: which pack produced an alert
    name: str


def collect(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in YARA_SUFFIXES))
        elif p.is_file():
            files.append(p)
        else:
            raise YaraPackError(f"{p}: no such file or folder")
    if not files:
        raise YaraPackError(f"{', '.join(map(str, paths))}: no YARA rule files")
    return files


def compile_pack(paths: list[Path], name: str = "") -> YaraPack:
    files = collect(paths)
    digest = hashlib.sha256()
    namespaces: dict[str, str] = {}
    for f in files:
        try:
            source = f.read_bytes()
            source.decode("utf-8")
        except OSError as exc:
            raise YaraPackError(f"{f}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise YaraPackError(f"{f}: not a text file") from None
        digest.update(f.name.encode() + b"\0" + source)
        try:  # alone first, so an error names its own file
            yara.compile(filepath=str(f))
        except yara.SyntaxError as exc:
            raise YaraPackError(_one_line(f, str(exc))) from None
        except yara.Error as exc:
            raise YaraPackError(f"{f}: {exc}") from None
        namespaces[f.stem if f.stem not in namespaces else str(f)] = str(f)
    try:
        rules = yara.compile(filepaths=namespaces)
    except yara.Error as exc:  # e.g. a duplicate rule name across files
        raise YaraPackError(f"{files[0].parent}: {exc}") from None
    return YaraPack(rules, tuple(files), digest.hexdigest()[:12], name or files[0].parent.name)


def _one_line(path: Path, message: str) -> str:
    m = _LINE.search(message)
    if m:
        return f"{path}:{m.group(1)}: {m.group(2)}"
    return f"{path}: {message}"
