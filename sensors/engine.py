"""The sensor engine: packets in; observations (and content to scan) out.

Decodes each frame, keeps a bounded flow table keyed like Community ID,
reassembles TCP, hands each flow's bytes to the one analyzer the detection
table (sensors.protocols) chose for it (by port, by the first bytes, or as a
connection an analyzer announced), and counts every packet it cannot use by
reason, without stopping. It knows no protocol: see sensors.analyzer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sensors import decode as dec
from sensors.analyzer import AnalyzerError, FlowState, Row
from sensors.flow import Content, Counters, Flow, SensorConfig
from sensors.flowhash import community_id
from sensors.fragments import Defragmenter
from sensors.observation import Observation
from sensors.prefilter import PreFilter
from sensors.protocols import PROTOCOLS
from sensors.reassembly import Stream
from sensors.report import Reporter

__all__ = ["Content", "Counters", "Flow", "Sensor", "SensorConfig"]

_FIN_RST = dec.TCP_FIN | dec.TCP_RST


class Sensor:
    def __init__(
        self,
        config: SensorConfig,
        emit: Callable[[Observation], None],
        on_content: Callable[[Content], None] | None = None,
        prefilter: PreFilter | None = None,
        protocols: Iterable[Row] = PROTOCOLS,
    ) -> None:
        self.config = config
        self.prefilter = prefilter
        self.flows: dict[tuple[int, bytes, int, bytes, int], Flow] = {}
        self.counters = Counters()
        self.report = Reporter(config, self.counters, emit, on_content, prefilter)
        self.defrag = Defragmenter()
        self.reassembly_bytes = 0  # held out-of-order bytes, across flows
        self._next_sweep = 0.0
        # The detection table, indexed: by the responder's port per transport, then
        # the sniffers in the table's order.
        self._by_port: dict[int, dict[int, Row]] = {dec.PROTO_TCP: {}, dec.PROTO_UDP: {}}
        self._sniffers: list[Row] = []
        for row in protocols:
            for transport in row.transports:
                for port in row.ports:
                    self._by_port.setdefault(transport, {}).setdefault(port, row)
            if row.sniff is not None:
                self._sniffers.append(row)

    # -- packets ---------------------------------------------------------
    def feed(self, batch: list[tuple[float, int, bytes]]) -> None:
        """A list of (timestamp, linktype, frame), as the capture sources yield them."""
        for ts, linktype, frame in batch:
            self.packet(ts, linktype, frame)

    def packet(self, ts: float, linktype: int, frame: bytes) -> None:
        c = self.counters
        c.packets += 1
        c.bytes += len(frame)
        try:
            pkt = dec.decode(linktype, frame)
        except dec.Fragment as frag:  # counted as a fragment, whatever becomes of it
            c.fragments += 1
            pkt = self._defragment(frag, ts)
            if pkt is None:
                return
        except dec.DecodeError as exc:
            c.malformed[exc.reason] += 1
            return
        else:
            if pkt is None:
                c.not_ip += 1
                return
            c.decoded += 1
        src, dst, proto, sport, dport = pkt.src, pkt.dst, pkt.proto, pkt.sport, pkt.dport
        if src < dst or (src == dst and sport <= dport):
            key = (proto, src, sport, dst, dport)
        else:
            key = (proto, dst, dport, src, sport)
        flow = self.flows.get(key)
        if flow is None:
            flow = self._new_flow(key, pkt, ts)
        flow.last = ts
        if ts >= self._next_sweep:
            self._sweep(ts)
        state = flow.state
        if state is FlowState.DONE:  # nothing more to extract: the cheapest path
            if pkt.flags & _FIN_RST:  # but note the close, so the key goes soon (_sweep)
                self._note_close(flow, pkt, src == flow.orig[0] and sport == flow.orig[1])
            return
        if state is FlowState.SKIPPED:
            c.filtered[flow.skip_reason] += 1
            return
        from_orig = src == flow.orig[0] and sport == flow.orig[1]
        try:
            if pkt.proto == dec.PROTO_TCP:
                self._tcp(flow, pkt, from_orig, ts)
            elif flow.analyzer is not None and not flow.analyzer.feed(from_orig, pkt.payload, ts):
                self._retire(flow)  # (a datagram: one message each)
        # (not `exc` again: compiled, one name keeps one type for the whole function)
        except AnalyzerError as err:
            c.protocol_errors[f"{flow.app}: {err}"] += 1
            self._retire(flow)

    def _defragment(self, frag: dec.Fragment, ts: float) -> dec.Packet | None:
        datagram = self.defrag.add(frag, ts)
        if datagram is None:
            return None
        try:
            return dec.transport(frag.proto, frag.src, frag.dst, datagram)
        except dec.DecodeError:
            self.defrag.counters["bad_datagram"] += 1
            return None

    def finish(self) -> None:
        """End of input: bodies delimited by connection close are complete now."""
        for flow in list(self.flows.values()):
            self._close(flow, flow.last)
        self.flows.clear()
        self.reassembly_bytes = 0

    # -- flows -----------------------------------------------------------
    def _new_flow(
        self, key: tuple[int, bytes, int, bytes, int], pkt: dec.Packet, ts: float
    ) -> Flow:
        src, sport, dst, dport = pkt.src, pkt.sport, pkt.dst, pkt.dport
        if self._sent_by_responder(pkt):
            src, sport, dst, dport = dst, dport, src, sport
        if pkt.proto in (dec.PROTO_ICMP, dec.PROTO_ICMPV6):  # type and code stand for ports
            cid = community_id(pkt.proto, src, dst, pkt.seq, pkt.ack)
        else:
            cid = community_id(pkt.proto, src, dst, sport, dport)
        flow = Flow(pkt.proto, src, sport, dst, dport, ts, cid, self.config.stream_depth)
        if len(self.flows) >= self.config.max_flows:
            self._evict_oldest()
        self.flows[key] = flow
        self.counters.flows += 1
        ends = flow.ends
        if self.prefilter is not None:
            reason = self.prefilter.skip_flow(ends.src_ip, ends.dst_ip, cid)
            if reason:
                flow.state, flow.skip_reason = FlowState.SKIPPED, reason  # counted per packet
                return flow
        self._detect_at_start(flow, sport, dport)
        # Every flow is an observation: its two addresses are what IP indicators match.
        self.report.emit(self.report.obs(ends, ts, None))
        return flow

    def _detect_at_start(self, flow: Flow, sport: int, dport: int) -> None:
        """An analyzer by the responder's port (UDP: either port), or for a connection
        an analyzer announced; else a TCP flow waits for its first bytes (_sniff)."""
        ports = self._by_port.get(flow.proto)
        if ports is None:
            flow.state = FlowState.DONE  # ICMP and the rest: the flow record is all
            return
        row = ports.get(dport)
        if row is None and flow.proto == dec.PROTO_UDP:
            row = ports.get(sport)
        if row is not None:
            flow.app, flow.analyzer = row.name, row.make(flow.ends, self.report)
        elif flow.proto == dec.PROTO_TCP and self.report.expected:
            expected = self.report.expected.pop((flow.ends.dst_ip, dport), None)
            if expected is not None:
                flow.app, flow.analyzer = expected[0], expected[1](flow.ends, self.report)
        if flow.analyzer is not None:
            flow.state = FlowState.ANALYZING
        elif flow.proto != dec.PROTO_TCP:
            flow.state = FlowState.DONE

    def _sniff(self, flow: Flow, data: bytes) -> bool:
        """The originator's first bytes name the protocol, or nothing reads the flow."""
        for row in self._sniffers:
            sniff = row.sniff
            if sniff is not None and sniff(data):
                flow.app, flow.analyzer = row.name, row.make(flow.ends, self.report)
                flow.state = FlowState.ANALYZING
                return True
        return False

    def _sent_by_responder(self, pkt: dec.Packet) -> bool:
        if pkt.proto == dec.PROTO_TCP:
            if pkt.flags & dec.TCP_SYN:
                return bool(pkt.flags & dec.TCP_ACK)
            return pkt.sport < 1024 <= pkt.dport
        if pkt.proto == dec.PROTO_UDP:  # a reply seen first: its protocol's row can tell
            row = self._by_port[dec.PROTO_UDP].get(pkt.sport)
            if row is not None and row.replies_first is not None:
                return row.replies_first(pkt)
        return False

    def observe(self, obs: Observation) -> None:
        """Take an observation made elsewhere (the deep backend) through the same filter."""
        self.report.emit(obs)

    def _sweep(self, now: float) -> None:
        cfg = self.config
        # Deadlines rather than idle times: one comparison per flow. The table is
        # walked without a copy, and only the expired keys are listed.
        udp_by, closed_by, tcp_by = (
            now - cfg.udp_idle_s,
            now - cfg.tcp_closed_s,
            now - cfg.tcp_idle_s,
        )
        expired = []
        for key, flow in self.flows.items():
            if flow.proto != dec.PROTO_TCP:
                deadline = udp_by
            elif flow.fins == 3:  # closed: only its last packets are still to come
                deadline = closed_by
            else:
                deadline = tcp_by
            if flow.last < deadline:
                expired.append(key)
        for key in expired:
            flow = self.flows.pop(key)
            self._release(flow)
            self._close(flow, flow.last)
        self.defrag.expire(now)
        self._next_sweep = now + 10.0

    def _evict_oldest(self) -> None:
        # Insertion order is creation order: the oldest flow goes first.
        flow = self.flows.pop(next(iter(self.flows)))
        self._release(flow)
        self._close(flow, flow.last)
        self.counters.flows_evicted += 1

    def _shed_memory(self, current: Flow) -> None:
        """Over the reassembly cap: evict the oldest flows holding data until at 90 %."""
        target = self.config.max_reassembly_bytes * 9 // 10
        for key, flow in list(self.flows.items()):
            if self.reassembly_bytes <= target:
                break
            if flow is current or not flow.streams or not any(s.pending for s in flow.streams):
                continue
            del self.flows[key]
            self._release(flow)
            self._close(flow, flow.last)
            self.counters.flows_evicted_memory += 1
        if self.reassembly_bytes > self.config.max_reassembly_bytes and current.streams:
            self._release(current)  # alone over the cap: give up its gaps
            for s in current.streams:
                s.overflow = True

    def _release(self, flow: Flow) -> None:
        """Forget a flow's held out-of-order data in the global account."""
        if flow.streams:
            for s in flow.streams:
                self.reassembly_bytes -= s.pending_bytes
                s.pending.clear()
                s.pending_bytes = 0

    def _close(self, flow: Flow, ts: float) -> None:
        if self.prefilter is not None:
            self.prefilter.forget(flow.ends.community_id)
        analyzer = flow.analyzer
        if analyzer is not None:
            flow.analyzer = None  # closed once; the flow may yet be retired
            analyzer.close(ts)

    # -- TCP and its applications ----------------------------------------
    def _tcp(self, flow: Flow, pkt: dec.Packet, from_orig: bool, ts: float) -> None:
        assert flow.streams is not None
        stream = flow.streams[0 if from_orig else 1]
        if pkt.flags & dec.TCP_SYN:
            stream.syn(pkt.seq)
            return
        if pkt.payload and flow.state is not FlowState.DONE:
            self._tcp_data(flow, stream, pkt, from_orig, ts)
        if pkt.flags & _FIN_RST:
            if flow.analyzer is not None:  # what a close delimits is complete
                flow.analyzer.end(from_orig, bool(pkt.flags & dec.TCP_RST), ts)
            if self._note_close(flow, pkt, from_orig):  # over: keep only its key, briefly
                self._close(flow, ts)
                self._retire(flow)

    @staticmethod
    def _note_close(flow: Flow, pkt: dec.Packet, from_orig: bool) -> bool:
        """Record a FIN or RST; True once the connection is closed both ways."""
        if pkt.flags & dec.TCP_RST:
            flow.fins = 3
        else:
            flow.fins |= 1 if from_orig else 2
        return flow.fins == 3

    def _retire(self, flow: Flow) -> None:
        """Nothing more to extract from this flow: drop its buffers and parsers.

        The flow stays in the table, so its last packets take the cheapest
        path and do not start a new flow; what it held goes now, not at its
        idle timeout (a closed HTTP connection held ~3 KiB for five minutes).
        """
        flow.state = FlowState.DONE
        self._release(flow)
        flow.streams = None
        flow.analyzer = None
        if self.prefilter is not None:
            self.prefilter.forget(flow.ends.community_id)  # no more observations to repeat

    def _tcp_data(
        self, flow: Flow, stream: Stream, pkt: dec.Packet, from_orig: bool, ts: float
    ) -> None:
        held = stream.pending_bytes
        data = stream.add(pkt.seq, pkt.payload)
        if stream.pending_bytes != held:
            self.reassembly_bytes += stream.pending_bytes - held
            if self.reassembly_bytes > self.config.max_reassembly_bytes:
                self._shed_memory(flow)
        if not data:
            return
        analyzer = flow.analyzer
        if analyzer is None:
            if flow.state is not FlowState.NEW or not from_orig:
                return  # (the responder spoke first: its bytes go unread)
            if not self._sniff(flow, data):
                self._retire(flow)  # nothing we extract from
                return
            analyzer = flow.analyzer
            assert analyzer is not None
        if not analyzer.feed(from_orig, data, ts):
            self._retire(flow)  # read all it needed (a TLS handshake): skip the rest cheaply
