"""The on-disk spool: sealed batches wait here, oldest first, until the centre has them.

Every batch goes through the spool (write, then send, then delete), so a
crash, a restart or a centre that is down loses nothing and reorders nothing.
It is bounded: when full, `drop_oldest` makes room (counting each batch it
drops) and `stop` refuses the new batch, so the caller can apply
back-pressure.

A batch the centre will never take is set aside (`refuse`) as
`<name>.refused`, with the centre's reason in `<name>.reason` beside it, so
it blocks nothing behind it and is still there for a person; such batches
count in the bound, and are the first to go when room is made. `resend()`
puts them back in the queue once the cause is fixed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^(\d{12})-([A-Za-z0-9._:-]+)\.json\.gz$")
REFUSED_SUFFIX = ".refused"
REASON_SUFFIX = ".reason"
POLICIES = ("drop_oldest", "stop")


class SpoolFull(Exception):
    """The spool is full and its policy is `stop`."""


@dataclass(frozen=True)
class SpooledBatch:
    path: Path
    batch_id: str
    payload: bytes  # gzip-compressed JSON, exactly as it is sent


class Spool:
    def __init__(self, folder: Path, max_bytes: int = 1 << 30, policy: str = "drop_oldest") -> None:
        if policy not in POLICIES:
            raise ValueError(f"spool policy must be one of {', '.join(POLICIES)}")
        self.folder = folder
        self.max_bytes = max_bytes
        self.policy = policy
        self.dropped = 0
        folder.mkdir(parents=True, exist_ok=True)
        for tmp in folder.glob("*.tmp"):  # a write cut short by a crash: never sealed
            tmp.unlink()
        self._files = sorted(p for p in folder.iterdir() if _NAME.match(p.name))
        # (path, size): `vigia sensor resend` may move them while this spool runs
        self._refused = [(p, p.stat().st_size) for p in sorted(folder.glob("*" + REFUSED_SUFFIX))]
        self._bytes = sum(p.stat().st_size for p in self._files)
        self.refused_bytes = sum(size for _p, size in self._refused)
        names = [p.name for p in self._files] + [
            p.name.removesuffix(REFUSED_SUFFIX) for p, _size in self._refused
        ]
        self._seq = max((int(m.group(1)) for n in names if (m := _NAME.match(n))), default=0)

    def __len__(self) -> int:
        return len(self._files)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def refused(self) -> int:
        """Batches set aside as refused (on disk, not in the queue)."""
        return len(self._refused)

    def put(self, batch_id: str, payload: bytes) -> None:
        """Store a sealed batch durably (fsync, then an atomic rename)."""
        while (self._files or self._refused) and (
            self._bytes + self.refused_bytes + len(payload) > self.max_bytes
        ):
            if self.policy == "stop":
                raise SpoolFull(
                    f"spool {self.folder} is full ({self._bytes + self.refused_bytes} bytes)"
                )
            if self._refused:  # what the centre refused goes first
                oldest, size = self._refused.pop(0)
                self.refused_bytes -= size
                oldest.with_name(oldest.name.removesuffix(REFUSED_SUFFIX) + REASON_SUFFIX).unlink(
                    missing_ok=True
                )
            else:
                oldest = self._files.pop(0)
                self._bytes -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
            self.dropped += 1
        self._seq += 1
        final = self.folder / f"{self._seq:012d}-{batch_id}.json.gz"
        tmp = final.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(final)
        self._files.append(final)
        self._bytes += len(payload)

    def peek(self) -> SpooledBatch | None:
        if not self._files:
            return None
        path = self._files[0]
        m = _NAME.match(path.name)
        assert m is not None
        return SpooledBatch(path, m.group(2), path.read_bytes())

    def ack(self, batch: SpooledBatch) -> None:
        """The centre has it: forget it."""
        if self._files and self._files[0] == batch.path:
            self._files.pop(0)
            self._bytes -= len(batch.payload)
            batch.path.unlink(missing_ok=True)

    def refuse(self, batch: SpooledBatch, reason: str) -> Path:
        """The centre will never take it: set it aside, its reason beside it."""
        aside = batch.path.with_name(batch.path.name + REFUSED_SUFFIX)
        batch.path.with_name(batch.path.name + REASON_SUFFIX).write_text(reason + "\n")
        batch.path.rename(aside)
        if self._files and self._files[0] == batch.path:
            self._files.pop(0)
            self._bytes -= len(batch.payload)
        self._refused.append((aside, len(batch.payload)))
        self.refused_bytes += len(batch.payload)
        return aside

    def resend(self, rewrite: Callable[[bytes], bytes] | None = None) -> int:
        """Put every refused batch back in the queue, in its place (its reason goes),
        each payload passed through `rewrite` first when given."""
        n = 0
        while self._refused:
            aside, size = self._refused[0]
            final = aside.with_name(aside.name.removesuffix(REFUSED_SUFFIX))
            if rewrite is not None:
                payload = rewrite(aside.read_bytes())
                tmp = final.with_suffix(".tmp")
                tmp.write_bytes(payload)
                tmp.rename(final)
                aside.unlink()
            else:
                aside.rename(final)
            final.with_name(final.name + REASON_SUFFIX).unlink(missing_ok=True)
            self._refused.pop(0)
            self.refused_bytes -= size
            self._files.append(final)
            self._bytes += final.stat().st_size
            n += 1
        self._files.sort()
        return n
