"""MISP warninglists: well-known values (public resolvers, top sites, empty-file hashes...)
that would only raise false positives. Applied when indicators are taken in: a
listed indicator is kept out, counted under the name of the list that caught it.

The lists come from pymispwarninglists (its bundled copy; nothing is fetched)
or from a folder of `list.json` files such as MISP's repository.

Matching is by exact value, as pymispwarninglists' default search. The lists
hold 2.5 million values (the Tranco and CrUX top million among them): held as
pymispwarninglists objects they took 310 MB and 20 µs an indicator. Here each
value is a 56-bit digest beside its list's number, in one sorted array
(8 bytes a value), looked up by bisection behind a bit filter that answers
most misses at once. Compiling that takes seconds; with a cache folder (the
centre's data folder) it is done once per set of lists and read back in
milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import subprocess
import sys
import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from functools import partial
from hashlib import blake2b
from itertools import repeat
from operator import methodcaller
from pathlib import Path
from typing import Any

from rules.indicator import Indicator
from rules.sources import LoadResult

_FILTER_BITS = 1 << 25  # 4 MB: about one miss in ten goes on to the bisection
_MASK = _FILTER_BITS - 1
_COMPILED: dict[str, Warnings] = {}
_MAGIC = b"VIGIA-WL1\n"  # the cache file's format: a change of layout changes it


_HASHER = partial(blake2b, digest_size=7)
_DIGEST = methodcaller("digest")
_TO_INT = partial(int.from_bytes, byteorder="big")


def default_cache_dir() -> Path:
    """Where a command with no data folder (`vigia scan`) keeps the compiled lists:
    VIGIA_CACHE_DIR, else the user's cache folder."""
    held = os.environ.get("VIGIA_CACHE_DIR")
    if held:
        return Path(held)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vigia"


class CompileStopped(Exception):
    """The compile's child was stopped: whoever asked for the lists is closing."""


class Compiles:
    """The compile children one owner (a centre) started, to stop when it closes: a
    child otherwise runs on, seconds, as long as the owner's process lives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self.stopped = False

    def add(self, child: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.add(child)
            if self.stopped:
                child.terminate()

    def discard(self, child: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(child)

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            for child in self._running:
                child.terminate()


def _compile_in_child(folder: Path, cached: Path, compiles: Compiles | None = None) -> bool:
    """Compile the lists into their cache file in a child process. The seconds of pure
    Python it takes would otherwise hold this process's GIL (a serving centre's event
    loop answered /health in seconds while they ran) and its peak memory would be
    this process's (the largest document is 70 MB as Python objects). False if the
    child failed: the caller compiles in process instead. CompileStopped if `compiles`
    was stopped meanwhile."""
    try:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rules.warninglists",
                str(folder),
                str(cached),
                str(os.getpid()),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return False
    if compiles is not None:
        compiles.add(child)
    try:
        code = child.wait(timeout=600)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        return False
    finally:
        if compiles is not None:
            compiles.discard(child)
    if compiles is not None and compiles.stopped:
        raise CompileStopped(str(cached))
    return code == 0


def _digest(value: str) -> int:
    return int.from_bytes(_HASHER(value.encode()).digest(), "big")


class Warnings:
    def __init__(self, lists: Iterable[dict[str, Any]]) -> None:
        """From warninglist documents (MISP's list.json), in the order given: the first
        list holding a value names it."""
        self._names: list[str] = []
        self._types: list[frozenset[str] | None] = []  # None: every attribute type
        # Which set of lists this is (their files' names, sizes and times), "" when made
        # from documents: an intake that skips an unchanged source checks it too.
        self.mark = ""
        keys = array("Q")  # 8 bytes a value while the documents are read, sorted after
        bits = bytearray(_FILTER_BITS >> 3)
        for doc in lists:
            n = len(self._names)
            self._names.append(str(doc["name"]))
            self._types.append(frozenset(doc.get("matching_attributes") or ()) or None)
            # The digests by C-level maps (a Python loop per value took 5x longer).
            encoded = map(str.encode, map(str, set(doc.get("list", ()))))
            digests = map(_DIGEST, map(_HASHER, encoded))
            hashes = list(map(_TO_INT, digests))
            keys.extend(map(operator.or_, map(operator.lshift, hashes, repeat(8)), repeat(n)))
            for h in hashes:
                bits[(h & _MASK) >> 3] |= 1 << (h & 7)
            if n == 255:
                raise ValueError("more than 256 warninglists")
        self._keys = array("Q", sorted(keys))
        del keys
        self._bits = bytes(bits)

    @classmethod
    def bundled(cls, cache_dir: Path | None = None, compiles: Compiles | None = None) -> Warnings:
        import importlib.util

        # Found, not imported: importing it loads jsonschema (~0.3 s at every start).
        spec = importlib.util.find_spec("pymispwarninglists")
        if spec is None or spec.origin is None:
            raise ImportError("pymispwarninglists is not installed")
        root = Path(spec.origin).parent
        return cls.from_folder(root / "data" / "misp-warninglists" / "lists", cache_dir, compiles)

    @classmethod
    def from_folder(
        cls, folder: Path, cache_dir: Path | None = None, compiles: Compiles | None = None
    ) -> Warnings:
        files = sorted(folder.glob("*/list.json"))
        mark = hashlib.sha256(_MAGIC)
        for p in files:
            st = p.stat()
            mark.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        name = f"warninglists-{mark.hexdigest()[:24]}"
        held = _COMPILED.get(name)  # read-only once made: one per process, shared
        if held is not None:
            return held
        cached = cache_dir / f"{name}.bin" if cache_dir is not None else None
        made = cls._read(cached) if cached is not None else None
        if made is None and cached is not None and _compile_in_child(folder, cached, compiles):
            made = cls._read(cached)
        if made is None:
            # One document at a time: the largest is 70 MB as Python objects.
            made = cls(json.loads(p.read_bytes()) for p in files)
            if cached is not None:
                made._write(cached)
        made.mark = name
        _COMPILED.clear()  # the last set of lists only
        _COMPILED[name] = made
        return made

    def _write(self, path: Path) -> None:
        """Kept for the next process (written aside, then renamed: readers see it whole)."""
        head = json.dumps(
            {"names": self._names, "types": [sorted(t) if t else None for t in self._types]}
        ).encode()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as fh:
                fh.write(_MAGIC + len(head).to_bytes(8, "big") + head)
                fh.write(len(self._keys).to_bytes(8, "big"))
                fh.write(self._keys.tobytes())
                fh.write(self._bits)
            tmp.replace(path)
        except OSError:
            pass  # no cache: compiled again next time

    @classmethod
    def _read(cls, path: Path) -> Warnings | None:
        """A cache file as written, or None (absent, another layout, cut short)."""
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            if not data.startswith(_MAGIC):
                return None
            at = len(_MAGIC)
            size = int.from_bytes(data[at : at + 8], "big")
            head = json.loads(data[at + 8 : at + 8 + size])
            at += 8 + size
            count = int.from_bytes(data[at : at + 8], "big")
            at += 8
            keys = array("Q")
            keys.frombytes(data[at : at + 8 * count])
            bits = data[at + 8 * count :]
            if len(keys) != count or len(bits) != _FILTER_BITS >> 3:
                return None
        except (ValueError, KeyError):
            return None
        made = cls(())
        made._names = [str(n) for n in head["names"]]
        made._types = [frozenset(t) if t else None for t in head["types"]]
        made._keys, made._bits = keys, bits
        return made

    def __len__(self) -> int:
        return len(self._names)

    def catching(self, ind: Indicator) -> str | None:
        """The name of the first list that holds this indicator, for its type."""
        h = _digest(ind.value)
        if not self._bits[(h & _MASK) >> 3] & (1 << (h & 7)):
            return None
        keys = self._keys
        at = bisect_left(keys, h << 8)
        while at < len(keys) and keys[at] >> 8 == h:
            n = keys[at] & 0xFF
            types = self._types[n]
            if types is None or ind.type in types:
                return self._names[n]
            at += 1
        return None

    def filter(self, result: LoadResult, indicators: Iterable[Indicator]) -> Iterator[Indicator]:
        """The indicators no list holds, as they come; the others counted in `result`."""
        catching, skipped = self.catching, result.skipped
        for ind in indicators:
            caught = catching(ind)
            if caught is None:
                yield ind
            else:
                skipped[f"warninglist: {caught}"] += 1

    def apply(self, result: LoadResult) -> LoadResult:
        """Keep listed indicators out of `result`, counted as `warninglist: <name>`."""
        kept = []
        catching, skipped = self.catching, result.skipped
        for ind in result.indicators:
            caught = catching(ind)
            if caught is None:
                kept.append(ind)
            else:
                skipped[f"warninglist: {caught}"] += 1
        result.indicators = kept
        return result


def _main(argv: list[str]) -> int:
    """`python -m rules.warninglists FOLDER CACHE_FILE PARENT_PID`: compile, write, exit
    0. One compile at a time per cache file (centres started together wait for the
    first, then read it); gone as soon as the process that asked is gone."""
    import fcntl

    folder, cached, parent = Path(argv[0]), Path(argv[1]), int(argv[2])
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with cached.with_suffix(".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if Warnings._read(cached) is None:
                files = sorted(folder.glob("*/list.json"))
                Warnings(json.loads(p.read_bytes()) for p in files)._write(cached)
    except OSError:
        return 1
    return 0 if cached.exists() else 1


def _exit_when_orphaned(parent: int) -> None:
    import time

    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(3)


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
