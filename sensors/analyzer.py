"""What a protocol analyzer is to the engine: one interface, one error base, a flow's states.

The engine (sensors.engine) reassembles each flow's bytes and hands them to
the one analyzer the detection table (sensors.protocols) chose for it. An
analyzer turns them into observations and files through the Reporter it was
made with (sensors.report); the engine knows nothing of any protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from sensors import decode as dec

if TYPE_CHECKING:  # report imports flow, which imports this module
    from sensors.report import Reporter


class FlowState(Enum):
    """Where a flow stands. Compared with `is` on every packet: compiled, an
    Enum's member is a cached constant, cheaper than the strings it replaced."""

    NEW = "new"  # a TCP flow whose originator has sent no data yet: no analyzer chosen
    ANALYZING = "analyzing"  # its analyzer reads its bytes
    DONE = "done"  # nothing more to extract: its packets take the cheapest path
    SKIPPED = "skipped"  # the pre-filter leaves it out (counted per packet)


class AnalyzerError(ValueError):
    """Bytes an analyzer cannot read: the engine counts it (protocol_errors, under the
    analyzer's name) and retires the flow. Each protocol's error derives from it."""


class Endpoints:
    """The flow as its observations name it: who spoke first to whom, over what.

    An analyzer keeps this rather than the Flow: the flow holds its analyzer,
    and the engine makes no reference cycles (tests/test_compiled.py).
    """

    __slots__ = ("community_id", "dport", "dst_ip", "proto", "sport", "src_ip")

    def __init__(
        self, proto: int, src_ip: str, sport: int, dst_ip: str, dport: int, community_id: str
    ) -> None:
        self.proto, self.community_id = proto, community_id
        self.src_ip, self.sport, self.dst_ip, self.dport = src_ip, sport, dst_ip, dport

    @property
    def is_tcp(self) -> bool:
        return self.proto == dec.PROTO_TCP


class Analyzer(Protocol):
    """One protocol's reader of one flow. A compiled analyzer (listed in
    sensors.compiled) inherits from it: the engine then calls it through a
    vtable. An uncompiled one must not (mypyc forbids an interpreted class to
    inherit a compiled protocol): it matches by its methods, called by name."""

    def feed(self, from_originator: bool, data: bytes, ts: float) -> bool:
        """The next bytes of one direction, in order (TCP, reassembled) or one
        datagram (UDP). False: nothing more to extract, retire the flow."""
        ...

    def end(self, from_originator: bool, reset: bool, ts: float) -> None:
        """That direction has stopped sending (FIN), or both have (RST): what is
        delimited by the close (an HTTP body without length) is complete."""
        ...

    def close(self, ts: float) -> None:
        """The flow is over (closed, idle, evicted, or the input ended)."""
        ...


# An analyzer's maker: the flow's endpoints and where its findings go.
Maker = Callable[[Endpoints, "Reporter"], Analyzer]


class Row:
    """One line of the detection table: a protocol, and how a flow is found to carry it.

    `ports`: the responder's port names the protocol at the flow's start (for
    UDP either port, as a reply may be seen alone); `sniff`: else the
    originator's first bytes do (TCP). `replies_first`: a UDP datagram from one
    of `ports` was sent by the responder (the flow is turned round)."""

    __slots__ = ("make", "name", "ports", "replies_first", "sniff", "transports")

    def __init__(
        self,
        name: str,
        make: Maker,
        ports: frozenset[int] = frozenset(),
        transports: frozenset[int] = frozenset({dec.PROTO_TCP}),
        sniff: Callable[[bytes], bool] | None = None,
        replies_first: Callable[[dec.Packet], bool] | None = None,
    ) -> None:
        self.name, self.make, self.ports, self.transports = name, make, ports, transports
        self.sniff, self.replies_first = sniff, replies_first
