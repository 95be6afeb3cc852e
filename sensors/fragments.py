"""IPv4 and IPv6 fragment reassembly, bounded and first-copy-wins.

Overlapping fragments keep the bytes that arrived first (counted as
`overlap`), so a later fragment cannot rewrite what was already seen — the
classic evasion. Datagrams are capped in size and number, and expire.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sensors.decode import Fragment

MAX_DATAGRAM = 65_535 + 8  # IPv6 payloads may carry the 8-byte fragment header's worth


@dataclass
class _Datagram:
    first_seen: float
    data: bytearray = field(default_factory=bytearray)
    filled: list[tuple[int, int]] = field(default_factory=list)  # [start, end) already written
    total: int | None = None  # known once the last fragment arrived


class Defragmenter:
    def __init__(self, max_datagrams: int = 4096, timeout_s: float = 30.0) -> None:
        self.max_datagrams = max_datagrams
        self.timeout_s = timeout_s
        self.pending: dict[tuple[bytes, bytes, int, int], _Datagram] = {}
        self.counters: Counter[str] = Counter()

    def add(self, frag: Fragment, ts: float) -> bytes | None:
        """Take one fragment; return the whole datagram's payload once complete."""
        key = (frag.src, frag.dst, frag.ident, frag.proto)
        dg = self.pending.get(key)
        if dg is None:
            if len(self.pending) >= self.max_datagrams:
                self.pending.pop(next(iter(self.pending)))
                self.counters["evicted"] += 1
            dg = self.pending[key] = _Datagram(ts)
        start, end = frag.offset, frag.offset + len(frag.payload)
        if end > MAX_DATAGRAM or (dg.total is not None and end > dg.total):
            self.counters["oversize"] += 1
            del self.pending[key]
            return None
        if not frag.more:
            dg.total = end
        if len(dg.data) < end:
            dg.data.extend(bytes(end - len(dg.data)))
        for a, b in _gaps(start, end, dg.filled):
            dg.data[a:b] = frag.payload[a - start : b - start]
        if any(a < end and start < b for a, b in dg.filled):
            self.counters["overlap"] += 1
        dg.filled = _merge([*dg.filled, (start, end)])
        if dg.total is not None and dg.filled == [(0, dg.total)]:
            del self.pending[key]
            self.counters["reassembled"] += 1
            return bytes(dg.data[: dg.total])
        return None

    def expire(self, now: float) -> None:
        for key, dg in list(self.pending.items()):
            if now - dg.first_seen > self.timeout_s:
                del self.pending[key]
                self.counters["expired"] += 1


def _gaps(start: int, end: int, filled: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of [start, end) not yet written."""
    out, pos = [], start
    for a, b in filled:
        if b <= pos:
            continue
        if a >= end:
            break
        if a > pos:
            out.append((pos, a))
        pos = max(pos, b)
    if pos < end:
        out.append((pos, end))
    return out


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged
