"""The compiled indicator index kept on disk: a restart reads it instead of rebuilding.

One file in the data folder's cache: a header (format, Python version, the
database it came from, the indicator version and last removal it holds), then
the index's tables as `marshal` data (plain values only: nothing in the file
can run code) and their SHA-256. A file of another format or Python, cut
short, altered, or from another database is not used: the index is rebuilt
from the store, and written again. A snapshot older than the store is used
when no indicator was removed since it was taken: the rows changed after it
are read and put in place, as a running index does.

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
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from correlator.index import IndicatorIndex

log = logging.getLogger("vigia.snapshot")

MAGIC = b"VIGIA-INDEX\n"
FORMAT = 2
CHUNK = 20_000


@dataclass(frozen=True)
class Stamp:
    database: str  # which store (its URL without credentials)
    version: int  # the indicator version the index holds
    rebuild: int  # the last version that removed indicators, when it was taken


def save(index: IndicatorIndex, path: Path, stamp: Stamp) -> None:
    """Write the index (aside, then renamed: a reader never sees half a file)."""
    # In parts of CHUNK entries: reading one part holds the GIL for milliseconds, so
    # requests are served while a restart reads a million (one marshal.loads of the
    # whole took 3 s under load, every request waiting).
    parts = [
        marshal.dumps(
            (index._metas, sorted(index._families), sorted(index._depths), index.size,
             sorted(index._tables)),
            4,
        )
    ]  # fmt: skip
    for kind in sorted(index._tables):
        items = iter(index._tables[kind].items())
        while chunk := list(islice(items, CHUNK)):
            parts.append(marshal.dumps((kind, chunk), 4))
    for family, trie in (("4", index._nets4), ("6", index._nets6)):
        prefixes = iter(list(trie))
        while chunk := [(p, trie[p]) for p in islice(prefixes, CHUNK)]:
            parts.append(marshal.dumps((family, chunk), 4))
    body = b"".join(len(part).to_bytes(4, "big") + part for part in parts)
    del parts
    head = json.dumps(
        {
            "format": FORMAT,
            "python": list(sys.version_info[:2]),
            "database": stamp.database,
            "version": stamp.version,
            "rebuild": stamp.rebuild,
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    ).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    with tmp.open("wb") as fh:
        fh.write(MAGIC + len(head).to_bytes(4, "big") + head + body)
    tmp.replace(path)


def load(path: Path, database: str) -> tuple[IndicatorIndex, Stamp] | None:
    """The index kept for this database and its stamp; None for a missing, foreign,
    older-format or damaged file (the caller rebuilds)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        if not data.startswith(MAGIC):
            raise ValueError("not a snapshot")
        at = len(MAGIC)
        size = int.from_bytes(data[at : at + 4], "big")
        head = json.loads(data[at + 4 : at + 4 + size])
        body = memoryview(data)[at + 4 + size :]
        if head["format"] != FORMAT or head["python"] != list(sys.version_info[:2]):
            raise ValueError(f"format {head['format']} of Python {head['python']}")
        if head["database"] != database:
            raise ValueError("taken from another database")
        if len(body) != head["size"] or hashlib.sha256(body).hexdigest() != head["sha256"]:
            raise ValueError("damaged (its digest does not match)")
        stamp = Stamp(database, int(head["version"]), int(head["rebuild"]))
        index = IndicatorIndex()
        at = 0
        while at < len(body):
            size = int.from_bytes(body[at : at + 4], "big")
            part = marshal.loads(body[at + 4 : at + 4 + size])
            if at == 0:
                metas, families, depths, count, kinds = part
                for meta in metas:
                    index._meta_id_of(tuple(meta))
                index._families, index._depths, index.size = set(families), set(depths), count
                index._tables = {kind: {} for kind in kinds}
            elif part[0] in ("4", "6"):
                trie = index._nets4 if part[0] == "4" else index._nets6
                for prefix, ref in part[1]:
                    trie[prefix] = ref
            else:
                index._tables[part[0]].update(part[1])
            at += 4 + size
    except (ValueError, KeyError, TypeError, EOFError) as exc:
        log.warning("index snapshot %s not used: %s; rebuilding", path, exc)
        return None
    return index, stamp
