"""Where analyzers report: observations through the pre-filter, files, expected connections.

The engine (sensors.engine) keeps the flows and their bytes; each flow's
analyzer (sensors.analyzer) reads them and reports what it finds here, on
ECS fields: the Reporter makes the observation of a flow, filters and counts
it and hands it on; hashes a file and hands its bytes to the content
hand-off (YARA, file sending); and keeps the connections an analyzer
announced (an FTP data connection) for the engine to give their analyzer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sensors import decode as dec
from sensors.analyzer import Endpoints, Maker
from sensors.extract import multipart
from sensors.flow import Content, Counters, SensorConfig
from sensors.observation import Observation
from sensors.prefilter import PreFilter

_TRANSPORT = {
    dec.PROTO_TCP: "tcp",
    dec.PROTO_UDP: "udp",
    dec.PROTO_ICMP: "icmp",
    dec.PROTO_ICMPV6: "ipv6-icmp",
}
MAX_EXPECTED = 10_000


class Reporter:
    def __init__(
        self,
        config: SensorConfig,
        counters: Counters,
        hand_on: Callable[[Observation], None],
        on_content: Callable[[Content], None] | None = None,
        prefilter: PreFilter | None = None,
    ) -> None:
        self.config = config
        self.counters = counters
        self.hand_on = hand_on
        self.on_content = on_content
        self.prefilter = prefilter
        # (responder address, port) of announced connections -> (protocol, analyzer's maker)
        self.expected: dict[tuple[str, int], tuple[str, Maker]] = {}

    def expect(self, protocol: str, address: str, port: int, make: Maker) -> None:
        """A connection to come (an FTP data connection): the next TCP flow to
        `address` and `port` gets its analyzer from `make`. Bounded: the oldest
        are forgotten."""
        if len(self.expected) > MAX_EXPECTED:
            self.expected.pop(next(iter(self.expected)))
        self.expected[(address, port)] = (protocol, make)

    def obs(self, flow: Endpoints, ts: float, protocol: str | None) -> Observation:
        """A new observation of `flow`, its values still to add."""
        icmp = flow.proto in (dec.PROTO_ICMP, dec.PROTO_ICMPV6)
        return Observation(
            timestamp=ts,
            observer=self.config.observer,
            src_ip=flow.src_ip,
            dst_ip=flow.dst_ip,
            src_port=None if icmp else flow.sport,
            dst_port=None if icmp else flow.dport,
            transport=_TRANSPORT.get(flow.proto, "other"),
            community_id=flow.community_id,
            protocol=protocol,
        )

    def emit(self, obs: Observation) -> None:
        """Through the pre-filter (a drop counted by reason), then handed on."""
        if self.prefilter is not None:
            reason = self.prefilter.drop_reason(obs)
            if reason:
                self.counters.filtered[reason] += 1
                return
        self.counters.observations += 1
        self.hand_on(obs)

    def file(
        self,
        flow: Endpoints,
        ts: float,
        protocol: str,
        data: bytes,
        name: str | None,
        source: str,
        mime_type: str = "",
    ) -> None:
        """A file seen in a flow: its name, declared type, size and hashes, and its
        bytes for YARA."""
        obs = self.obs(flow, ts, protocol)
        if name:
            base, path = multipart.split_path(name)
            if base:
                obs.add("file.name", base)
            if path:
                obs.add("file.path", path)
        if mime_type:
            obs.add("file.mime_type", mime_type)
        obs.add("file.size", str(len(data)))
        obs.add("file.hash.md5", hashlib.md5(data, usedforsecurity=False).hexdigest())
        obs.add("file.hash.sha1", hashlib.sha1(data, usedforsecurity=False).hexdigest())
        obs.add("file.hash.sha256", hashlib.sha256(data).hexdigest())
        self.emit(obs)
        if self.on_content is not None:
            self.counters.contents += 1
            self.on_content(Content(obs, data, source))
