"""Bounded TCP reassembly of one direction of a connection.

Handles out-of-order segments (held until the gap fills, within a cap),
retransmissions and overlaps (the first copy wins, as most stacks do), and
sequence-number wrap. Each stream stops delivering after `depth` bytes.
"""

from __future__ import annotations

_MOD = 1 << 32
_HALF = 1 << 31


class Stream:
    __slots__ = (
        "delivered",
        "depth",
        "max_pending",
        "next_seq",
        "overflow",
        "pending",
        "pending_bytes",
    )

    def __init__(self, depth: int, max_pending: int = 256 * 1024) -> None:
        self.next_seq: int | None = None
        self.pending: dict[int, bytes] = {}
        self.pending_bytes = 0
        self.delivered = 0
        self.depth = depth
        self.max_pending = max_pending
        self.overflow = False  # gave up on a gap that never filled

    def syn(self, seq: int) -> None:
        if self.next_seq is None:
            self.next_seq = (seq + 1) % _MOD

    @property
    def done(self) -> bool:
        return self.delivered >= self.depth or self.overflow

    def add(self, seq: int, data: bytes) -> bytes:
        """Take one segment; return the bytes that are now in order (maybe empty)."""
        if not data or self.done:
            return b""
        if self.next_seq is None:  # picked up mid-stream: start here
            self.next_seq = seq
        rel = (seq - self.next_seq) % _MOD
        if rel >= _HALF:  # starts before what we delivered: retransmission or overlap
            overlap = _MOD - rel
            if overlap >= len(data):
                return b""
            data, rel = data[overlap:], 0
        if rel > 0:  # a gap: hold the segment
            if self.pending_bytes + len(data) > self.max_pending:
                self.overflow = True
                return b""
            key = (self.next_seq + rel) % _MOD
            if key not in self.pending:
                self.pending[key] = data
                self.pending_bytes += len(data)
            return b""
        self.next_seq = (self.next_seq + len(data)) % _MOD
        if self.pending:  # the segment may close a gap: held ones follow it
            out = [data]
            while self.pending:
                nxt = self._take_pending()
                if nxt is None:
                    break
                out.append(nxt)
            chunk = b"".join(out)
        else:  # in order, nothing held: the usual case
            chunk = data
        room = self.depth - self.delivered
        if len(chunk) > room:
            chunk = chunk[:room]
        self.delivered += len(chunk)
        return chunk

    def _take_pending(self) -> bytes | None:
        """Pop held segments that now start at or before next_seq."""
        assert self.next_seq is not None
        for key in list(self.pending):
            rel = (key - self.next_seq) % _MOD
            if rel == 0 or rel >= _HALF:
                data = self.pending.pop(key)
                self.pending_bytes -= len(data)
                skip = 0 if rel == 0 else _MOD - rel
                if skip < len(data):
                    self.next_seq = (self.next_seq + len(data) - skip) % _MOD
                    return data[skip:]
        return None
