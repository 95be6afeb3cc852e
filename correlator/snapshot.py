"""The compiled indicator index kept on disk: a restart reads it instead of rebuilding.

One file in the data folder's cache: the index's tables as `marshal` data
(plain values only: nothing in the file can run code), in parts, then a
trailer (format, Python version, the database it came from, the indicator
version and last removal it holds, the parts' size and SHA-256) and its
length. Written and read a part at a time: neither side holds the file whole
(a `vigia scan`'s peak memory counts every copy); the digest is checked in a
first pass, before anything is unmarshalled. Each part of a table is a list
of keys beside a list of their references, put in by one C-level update (as
(key, reference) pairs, format 2, it took twice as long). A file of another
format or Python, cut short, altered, or from another database is not used:
the index is rebuilt from the store, and written again. A snapshot older
than the store is used when no indicator was removed since it was taken: the
rows changed after it are read and put in place, as a running index does.

Whitelisted values are not kept in it (few): they are read again from the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import marshal
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from correlator.index import IndicatorIndex

log = logging.getLogger("vigia.snapshot")

MAGIC = b"VIGIA-INDEX\n"
# 2: the header first, and a table's parts as (key, reference) pairs; 3: IPv4
# addresses as text and IPv4 networks as a trie's (prefix, reference) pairs
FORMAT = 4
# Entries a part: small, so what a part brings with it while it is written or read
# (its lists, pairs and marshal data, and the holes they leave in the heap) stays
# small beside the index. At 20 000, with 1 M indicators, saving peaked 13 MB over
# the index and loading 6 MB (3 MB of it still held after); at 2 000, ~1 MB and
# nothing, loading in the same 0.27 s of CPU.
CHUNK = 2_000


@dataclass(frozen=True)
class Stamp:
    database: str  # which store (its URL without credentials)
    version: int  # the indicator version the index holds
    rebuild: int  # the last version that removed indicators, when it was taken
    notes: str = ""  # the caller's own, kept as given (correlator.scanindex: file counts)


def save(index: IndicatorIndex, path: Path, stamp: Stamp) -> None:
    """Write the index (aside, then renamed: a reader never sees half a file)."""
    digest, size = hashlib.sha256(), 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    with tmp.open("wb") as fh:
        fh.write(MAGIC)
        for part in _parts(index):
            framed = len(part).to_bytes(4, "big") + part
            digest.update(framed)
            size += len(framed)
            fh.write(framed)
        trailer = json.dumps(
            {
                "format": FORMAT,
                "python": list(sys.version_info[:2]),
                "database": stamp.database,
                "version": stamp.version,
                "rebuild": stamp.rebuild,
                "notes": stamp.notes,
                "size": size,
                "sha256": digest.hexdigest(),
            }
        ).encode()
        fh.write(trailer + len(trailer).to_bytes(4, "big"))
    tmp.replace(path)


def _parts(index: IndicatorIndex) -> Iterator[bytes]:
    # In parts of CHUNK entries: reading one part holds the GIL for milliseconds, so
    # requests are served while a restart reads a million (one marshal.loads of the
    # whole took 3 s under load, every request waiting).
    yield marshal.dumps(
        (index._metas, sorted(index._families), sorted(index._depths), index.size,
         sorted(index._tables)),
        4,
    )  # fmt: skip
    for kind in sorted(index._tables):
        items = iter(index._tables[kind].items())
        while chunk := list(islice(items, CHUNK)):
            yield marshal.dumps((kind, [k for k, _ in chunk], [r for _, r in chunk]), 4)
    for length, nets in sorted(index._nets4.items()):  # IPv4: a dict per prefix length
        items = iter(nets.items())
        while chunk := list(islice(items, CHUNK)):
            yield marshal.dumps(("4", length, [k for k, _ in chunk], [r for _, r in chunk]), 4)
    trie = index._nets6
    prefixes = iter(trie)  # as they come: a list of them would be more memory
    while pairs := [(p, trie[p]) for p in islice(prefixes, CHUNK)]:
        yield marshal.dumps(("6", pairs), 4)


def load(path: Path, database: str) -> tuple[IndicatorIndex, Stamp] | None:
    """The index kept for this database and its stamp; None for a missing, foreign,
    older-format or damaged file (the caller rebuilds)."""
    try:
        with path.open("rb") as fh:
            return _read(fh, database)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        log.warning("index snapshot %s not used: %s; rebuilding", path, exc)
        return None


def _read(fh: BinaryIO, database: str) -> tuple[IndicatorIndex, Stamp]:
    if fh.read(len(MAGIC)) != MAGIC:
        raise ValueError("not a snapshot")
    end = fh.seek(0, os.SEEK_END)
    if end < len(MAGIC) + 4:
        raise ValueError("cut short")
    fh.seek(end - 4)
    size = int.from_bytes(fh.read(4), "big")
    if size > end - len(MAGIC) - 4:
        raise ValueError("cut short")
    fh.seek(end - 4 - size)
    head = json.loads(fh.read(size))
    if head["format"] != FORMAT or head["python"] != list(sys.version_info[:2]):
        raise ValueError(f"format {head['format']} of Python {head['python']}")
    if head["database"] != database:
        raise ValueError("taken from another database")
    body = end - 4 - size - len(MAGIC)
    fh.seek(len(MAGIC))
    digest, left = hashlib.sha256(), body
    while left > 0 and (block := fh.read(min(left, 1 << 20))):
        digest.update(block)
        left -= len(block)
    if body != head["size"] or left or digest.hexdigest() != head["sha256"]:
        raise ValueError("damaged (its digest does not match)")
    stamp = Stamp(database, int(head["version"]), int(head["rebuild"]), str(head["notes"]))
    index = IndicatorIndex()
    fh.seek(len(MAGIC))
    first = True
    while left < body:
        size = int.from_bytes(fh.read(4), "big")
        part = marshal.loads(fh.read(size))
        left += 4 + size
        if first:
            metas, families, depths, count, kinds = part
            for meta in metas:
                index._meta_id_of(tuple(meta))
            index._families, index._depths, index.size = set(families), set(depths), count
            index._tables = {kind: {} for kind in kinds}
            first = False
        elif part[0] == "4":
            _, length, keys, refs = part
            if length not in index._nets4:
                index._nets4[length] = {}
                index._lengths4 = tuple(sorted(index._nets4, reverse=True))
            index._nets4[length].update(zip(keys, refs, strict=True))
        elif part[0] == "6":
            for prefix, ref in part[1]:
                index._nets6[prefix] = ref
        else:
            kind, keys, refs = part
            index._tables[kind].update(zip(keys, refs, strict=True))
    return index, stamp
