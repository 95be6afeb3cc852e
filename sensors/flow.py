"""The sensor engine's records: its configuration, counters, a flow's state, content.

Kept apart from the engine's logic (sensors.engine) so each stays readable.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sensors import decode as dec
from sensors.extract import ftp, http, smb, smtp
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
    __slots__ = (
        "app",
        "certs_buf",
        "community_id",
        "dns_bufs",
        "dns_seen",
        "dport",
        "dst_ip",
        "fins",
        "ftp",
        "ftp_data",
        "hello_buf",
        "http",
        "last",
        "orig",
        "proto",
        "skip_reason",
        "smb",
        "smtp",
        "sport",
        "src_ip",
        "streams",
        "tls_done",
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
        self.src_ip, self.dst_ip = dec.address_text(src), dec.address_text(dst)
        self.sport, self.dport = sport, dport
        self.community_id = cid
        self.last = ts
        self.app: str | None = None
        self.streams = (Stream(depth), Stream(depth)) if proto == dec.PROTO_TCP else None
        self.http: tuple[http.HttpParser, http.HttpParser] | None = None
        # DNS state, made on the first DNS message (most flows carry none)
        self.dns_bufs: list[bytes] | None = None  # TCP: each direction's unfinished message
        self.dns_seen: set[int] | None = None  # transaction ids whose query we observed
        self.tls_done = False
        self.hello_buf = b""
        self.smtp: smtp.SmtpParser | None = None
        self.smb: smb.SmbClient | None = None
        self.skip_reason = ""
        self.ftp: ftp.FtpControl | None = None  # a control connection
        self.ftp_data: tuple[ftp.FtpControl, bytearray] | None = None  # a data connection
        self.certs_buf: bytes | None = b""  # None once the server's certificates are read
        self.fins = 0  # FIN seen from the originator (1), the responder (2); 3: closed (or RST)
