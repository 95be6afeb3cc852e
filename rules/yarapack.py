"""YARA rules from files or folders: validated per file, compiled together.

A file that does not compile refuses the whole set, naming the file and line,
so a running set is only ever replaced by one that fully compiles.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yara

# The digest the sensor checks a shipped pack against: one definition, the sensor's.
from sensors.yarascan import sources_digest

YARA_SUFFIXES = (".yar", ".yara", ".rule", ".rules")
_LINE = re.compile(r"\((\d+)\): (.*)$")
_SOURCE_LINE = re.compile(r"^line (\d+): (.*)$")


class YaraPackError(Exception):
    """One line: `file:line: reason`."""


@dataclass(frozen=True)
class YaraPack:
    rules: yara.Rules
    files: tuple[Path, ...]
    version: str  # sha256 of the sources, short: which pack produced an alert
    name: str
    # The rule texts by namespace, as compiled: what sensors fetch to compile the
    # same pack where the bytes are (GET /api/v1/rules/pack).
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def shipped(self) -> dict[str, object]:
        """The pack as a sensor takes it: sources, externals and a digest to check them."""
        body: dict[str, object] = {"name": self.name, "version": self.version}
        body["externals"] = EXTERNALS
        body["sources"] = self.sources
        body["sha256"] = sources_digest(self.sources)
        return body


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


# Variables every rule may use: what Vigía knows about the content it scans.
EXTERNALS = {"filename": "", "protocol": "", "source": ""}


def compile_pack(
    paths: list[Path], name: str = "", extra: dict[str, str] | None = None
) -> YaraPack:
    """Compile rule files (and `extra` rule texts by namespace, e.g. from MISP) as one pack."""
    files = collect(paths) if paths else []
    if not files and not extra:
        raise YaraPackError("no YARA rules given")
    digest = hashlib.sha256()
    sources: dict[str, str] = {}
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except OSError as exc:
            raise YaraPackError(f"{f}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise YaraPackError(f"{f}: not a text file") from None
        _check(str(f), filepath=str(f))  # alone first, so an error names its own file
        digest.update(f.name.encode() + b"\0" + text.encode())
        sources[f.stem if f.stem not in sources else str(f)] = text
    for namespace, text in (extra or {}).items():
        _check(namespace, source=text)
        digest.update(namespace.encode() + b"\0" + text.encode())
        sources[namespace] = text
    try:
        if extra:
            rules = yara.compile(sources=sources, externals=EXTERNALS)
        else:  # from the files themselves, so `include` paths resolve as their authors meant
            stems = {ns: str(f) for ns, f in zip(sources, files, strict=True)}
            rules = yara.compile(filepaths=stems, externals=EXTERNALS)
    except yara.Error as exc:  # e.g. a duplicate rule name across files
        where = files[0].parent if files else "rules"
        raise YaraPackError(f"{where}: {exc}") from None
    label = name or (files[0].parent.name if files else "misp")
    return YaraPack(rules, tuple(files), digest.hexdigest()[:12], label, sources)


def _check(where: str, **source: str) -> None:
    try:
        yara.compile(externals=EXTERNALS, **source)
    except yara.SyntaxError as exc:
        raise YaraPackError(_one_line(Path(where), str(exc))) from None
    except yara.Error as exc:
        raise YaraPackError(f"{where}: {exc}") from None


def _one_line(path: Path, message: str) -> str:
    m = _LINE.search(message) or _SOURCE_LINE.match(message)  # file(N): ... or line N: ...
    if m:
        return f"{path}:{m.group(1)}: {m.group(2)}"
    return f"{path}: {message}"
