"""The sensor engine's records: its configuration, counters, a flow's state, content.

Kept apart from the engine's logic (sensors.engine) so each stays readable.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sensors import decode as dec
from sensors.analyzer import Analyzer, Endpoints, FlowState
from sensors.observation import Observation
from sensors.reassembly import Stream


@dataclass(frozen=True)
class SensorConfig:
    observer: str = "vigia-sensor"
    stream_depth: int = 1024 * 1024  # bytes reassembled per direction
    max_body: int = 4 * 1024 * 1024  # bytes kept per HTTP body (after decoding)
    max_flows: int = 200_000
    max_reassembly_bytes: int = 256 * 1024 * 1024  # out-of-order data held, all flows
    tcp_idle_s: float = 300.0
    tcp_closed_s: float = 5.0  # a closed connection's key stays this long (Zeek's tcp_close_delay)
    udp_idle_s: float = 60.0


@dataclass
class Counters:
    packets: int = 0
    bytes: int = 0
    decoded: int = 0
    not_ip: int = 0
    flows: int = 0
    flows_evicted: int = 0
    flows_evicted_memory: int = 0  # evicted because reassembly hit its memory cap
    fragments: int = 0  # IP fragments taken into reassembly
    observations: int = 0
    contents: int = 0
    malformed: Counter[str] = field(default_factory=Counter)  # by reason
    filtered: Counter[str] = field(default_factory=Counter)  # packets or observations, by reason
    protocol_errors: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class Content:
    """Reassembled bytes worth scanning (an HTTP body), with the flow it came in."""

    observation: Observation  # the flow's endpoints and the values that named the content
    data: bytes
    source: str  # e.g. "http.response.body"


class Flow:
    """One flow's state in the engine's table: its endpoints, its TCP streams and
    close, and the one analyzer reading it (its protocol's state is the analyzer's)."""

    __slots__ = (
        "analyzer",
        "app",
        "ends",
        "fins",
        "last",
        "orig",
        "proto",
        "skip_reason",
        "state",
        "streams",
    )

    def __init__(
        self,
        proto: int,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        ts: float,
        cid: str,
        depth: int,
    ) -> None:
        self.proto = proto
        self.orig = (src, sport)
        self.ends = Endpoints(
            proto, dec.address_text(src), sport, dec.address_text(dst), dport, cid
        )
        self.last = ts
        self.state = FlowState.NEW
        self.analyzer: Analyzer | None = None
        self.app = ""  # the analyzer's protocol (its table row's name), for counters
        self.streams = (Stream(depth), Stream(depth)) if proto == dec.PROTO_TCP else None
        self.skip_reason = ""
        self.fins = 0  # FIN seen from the originator (1), the responder (2); 3: closed (or RST)
