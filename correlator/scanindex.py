"""`vigia scan`'s compiled index kept between runs: the same indicator files are
read and normalised once, then read back from the cache (correlator.snapshot's file).

A scan's index is named by what it was built from: the SHA-256 of each file's
bytes, in order, whether the warninglists were applied (and which), and the
snapshot format, Vigía release and code that built it (the size and time of
the loaders', normalisation's and index's source files: a development tree
keeps one release number). Another set of files, a file changed by one byte,
other lists or other code give another name, so a stale index is never read;
a damaged one is refused by the snapshot's own checks and built again. Only a
large index is kept (a small one builds in less time than its file takes to
check), and only one whose files gave no YARA rule and no whitelisted value
(neither is held in a snapshot). The few newest are kept in the cache
folder; older ones are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from correlator import snapshot
from correlator.index import IndicatorIndex
from rules.sources import file_digest

log = logging.getLogger("vigia.scan")

KEEP_FROM = 100_000  # indicators: a smaller index is built again, not kept
KEPT = 3  # scan indexes kept in the cache folder, the newest
PREFIX = "scan-index-"


@dataclass(frozen=True)
class FileCount:
    """What one indicator file gave, as the scan reports it."""

    source: str
    format: str
    loaded: int
    skipped: dict[str, int]


def name_of(paths: Sequence[Path], warninglists: str | None) -> str | None:
    """The name of the index these files build (with these warninglists: their version,
    or None when not applied); None when one is not a readable file (a MISP feed
    folder: not kept)."""
    digests = []
    for p in paths:
        digest = file_digest(p) if p.is_file() else None
        if digest is None:
            return None
        digests.append(digest)
    try:
        release = metadata.version("vigia")
    except metadata.PackageNotFoundError:
        release = "source"
    what = [snapshot.FORMAT, release, _code(), warninglists, digests]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:40]


def _code() -> list[tuple[str, int, int]]:
    """The source files whose code decides what an indicator file indexes as."""
    import rules

    here = Path(__file__).parent
    root = Path(rules.__file__).parent
    files = [here / "index.py", here / "whitelist.py", *root.glob("*.py")]
    files += [*root.glob("sources/*.py"), *root.glob("vocab/*.json")]
    marks = []
    for p in sorted(files):
        st = p.stat()
        marks.append((str(p), st.st_size, st.st_mtime_ns))
    return marks


def _path(cache_dir: Path, name: str) -> Path:
    return cache_dir / f"{PREFIX}{name}.snapshot"


def load(cache_dir: Path, name: str) -> tuple[IndicatorIndex, list[FileCount]] | None:
    """The index kept under this name and its files' counts; None if there is none
    (or it is damaged: the snapshot says why in the log)."""
    path = _path(cache_dir, name)
    if not path.exists():
        return None
    kept = snapshot.load(path, name)
    if kept is None:
        return None
    index, stamp = kept
    try:
        counts = [FileCount(**c) for c in json.loads(stamp.notes)]
    except (ValueError, TypeError) as exc:
        log.warning("scan index %s not used: %s", path, exc)
        return None
    return index, counts


def keep(cache_dir: Path, name: str, index: IndicatorIndex, counts: Sequence[FileCount]) -> None:
    """Keep a large index for the next scan of the same files (a failure to write only
    costs that scan the build); the oldest beyond KEPT go."""
    if index.size < KEEP_FROM or index.whitelist.size:
        return
    notes = json.dumps([c.__dict__ for c in counts])
    try:
        snapshot.save(index, _path(cache_dir, name), snapshot.Stamp(name, 0, 0, notes))
        held = sorted(cache_dir.glob(f"{PREFIX}*.snapshot"), key=lambda p: p.stat().st_mtime)
        for old in held[:-KEPT]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("scan index not kept: %s", exc)


def counted(source: str, fmt: str, loaded: int, skipped: Counter[str]) -> FileCount:
    return FileCount(source, fmt, loaded, dict(skipped))
