"""The sensor engine: packets in; observations (and content to scan) out.

Decodes each frame, keeps a bounded flow table keyed like Community ID,
reassembles TCP, hands each flow's bytes to the protocol extractor that fits
(by port for DNS, by content for HTTP and TLS), and counts every packet it
cannot use by reason, without stopping.
"""

from __future__ import annotations

from collections.abc import Callable

from sensors import decode as dec
from sensors.extract import dns, ftp, http, smb, smtp, tls
from sensors.flow import Content, Counters, Flow, SensorConfig
from sensors.flowhash import community_id
from sensors.fragments import Defragmenter
from sensors.observation import Observation
from sensors.prefilter import PreFilter
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
    ) -> None:
        self.config = config
        self.prefilter = prefilter
        self.flows: dict[tuple[int, bytes, int, bytes, int], Flow] = {}
        self.counters = Counters()
        self.report = Reporter(config, self.counters, emit, on_content, prefilter)
        self.defrag = Defragmenter()
        self.reassembly_bytes = 0  # held out-of-order bytes, across flows
        self._next_sweep = 0.0
        # (address, port) of announced FTP data connections -> their control session
        self._ftp_expected: dict[tuple[str, int], ftp.FtpControl] = {}

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
        app = flow.app
        if app == "dead":  # nothing more to extract: the cheapest path
            if pkt.flags & _FIN_RST:  # but note the close, so the key goes soon (_sweep)
                self._note_close(flow, pkt, src == flow.orig[0] and sport == flow.orig[1])
            return
        if app == "skip":
            c.filtered[flow.skip_reason] += 1
            return
        from_orig = src == flow.orig[0] and sport == flow.orig[1]
        try:
            if pkt.proto == dec.PROTO_TCP:
                self._tcp(flow, pkt, from_orig, ts)
            elif pkt.proto == dec.PROTO_UDP and flow.app == "dns":
                self.report.dns_message(flow, pkt.payload, ts)
        # (not `exc` again: compiled, one name keeps one type for the whole function)
        except (dns.DnsError, tls.TlsError, http.HttpError, smtp.SmtpError, smb.SmbError) as err:
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
        if pkt.proto == dec.PROTO_TCP:
            if dport in ftp.FTP_PORTS:
                flow.app, flow.ftp = "ftp", ftp.FtpControl(flow.src_ip, flow.dst_ip)
            else:
                control = self._ftp_expected.pop((flow.dst_ip, dport), None)
                if control is not None:
                    flow.app, flow.ftp_data = "ftp-data", (control, bytearray())
        # DNS by the responder's port; over UDP a reply seen alone counts too.
        # (A TCP client's ephemeral port may well be 5353: HTTP on it is HTTP.)
        if dport in dns.DNS_PORTS or (pkt.proto == dec.PROTO_UDP and sport in dns.DNS_PORTS):
            flow.app = "dns" if pkt.proto in (dec.PROTO_UDP, dec.PROTO_TCP) else flow.app
        if len(self.flows) >= self.config.max_flows:
            self._evict_oldest()
        self.flows[key] = flow
        self.counters.flows += 1
        if self.prefilter is not None:
            reason = self.prefilter.skip_flow(flow.src_ip, flow.dst_ip, cid)
            if reason:
                flow.app, flow.skip_reason = "skip", reason  # counted per packet in packet()
                return flow
        # Every flow is an observation: its two addresses are what IP indicators match.
        self.report.emit(self.report.obs(flow, ts, None))
        return flow

    @staticmethod
    def _sent_by_responder(pkt: dec.Packet) -> bool:
        if pkt.proto == dec.PROTO_TCP:
            if pkt.flags & dec.TCP_SYN:
                return bool(pkt.flags & dec.TCP_ACK)
        elif pkt.proto == dec.PROTO_UDP and pkt.sport in dns.DNS_PORTS:
            # A DNS reply seen first: its receiver asked (Zeek flips likewise),
            # unless it went to a multicast group (mDNS announcements).
            multicast = pkt.dst[0] == 0xFF if len(pkt.dst) == 16 else 224 <= pkt.dst[0] <= 239
            return not multicast and len(pkt.payload) > 2 and bool(pkt.payload[2] & 0x80)
        else:
            return False
        return pkt.sport < 1024 <= pkt.dport

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
            self.prefilter.forget(flow.community_id)
        if flow.http is not None and flow.app == "http":
            for parser in flow.http:
                for item in parser.close():
                    self.report.http_item(flow, item, ts)
            flow.http = None
        self._finish_ftp_data(flow, ts)

    def _finish_ftp_data(self, flow: Flow, ts: float) -> None:
        if flow.ftp_data is not None:
            control, data = flow.ftp_data
            flow.ftp_data = None
            if data and control.transferring_file:
                self.report.file(flow, ts, "ftp-data", bytes(data), control.filename, "ftp.data")

    # -- TCP and its applications ----------------------------------------
    def _tcp(self, flow: Flow, pkt: dec.Packet, from_orig: bool, ts: float) -> None:
        assert flow.streams is not None
        stream = flow.streams[0 if from_orig else 1]
        if pkt.flags & dec.TCP_SYN:
            stream.syn(pkt.seq)
            return
        if pkt.payload and flow.app != "dead":
            self._tcp_data(flow, stream, pkt, from_orig, ts)
        if pkt.flags & _FIN_RST:
            reset = bool(pkt.flags & dec.TCP_RST)
            if flow.http is not None or flow.ftp_data is not None:
                self._end(flow, from_orig, reset, ts)
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
        flow.app = "dead"
        self._release(flow)
        flow.streams = None
        flow.http = flow.smtp = flow.smb = flow.ftp = None
        flow.ftp_data = None
        flow.hello_buf, flow.certs_buf = b"", None
        if self.prefilter is not None:
            self.prefilter.forget(flow.community_id)  # no more observations to repeat

    def _end(self, flow: Flow, from_orig: bool, reset: bool, ts: float) -> None:
        """One side is done sending (FIN), or the connection is gone (RST).

        A FIN ends only its own direction: a client may half-close and still
        receive the response it asked for.
        """
        if flow.http is not None:
            for side in (0, 1) if reset else (0 if from_orig else 1,):
                for item in flow.http[side].close():
                    self.report.http_item(flow, item, ts)
            if reset:
                flow.http = None
        self._finish_ftp_data(flow, ts)

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
        if flow.app is None and from_orig:
            if http.looks_like_request(data):
                flow.app = "http"
                pending: list[tuple[str, str]] = []
                flow.http = (
                    http.HttpParser(True, self.config.max_body, pending),
                    http.HttpParser(False, self.config.max_body, pending),
                )
            elif tls.looks_like_tls(data):
                flow.app = "tls"
            elif smb.looks_like_smb(data):
                flow.app, flow.smb = "smb", smb.SmbClient()
            elif smtp.looks_like_smtp(data):
                flow.app = "smtp"
                flow.smtp = smtp.SmtpParser(self.config.max_body * 4)
            else:
                self._retire(flow)  # nothing we extract from
                return
        if flow.app == "http" and flow.http is not None:
            for item in flow.http[0 if from_orig else 1].feed(data):
                self.report.http_item(flow, item, ts)
        elif flow.app == "tls":
            if from_orig and not flow.tls_done:
                self.report.tls_client(flow, data, ts)
            elif not from_orig and flow.certs_buf is not None:
                self.report.tls_server(flow, data, ts)
            if flow.tls_done and flow.certs_buf is None:
                self._retire(flow)  # both sides read: the rest is encrypted, skip it cheaply
        elif flow.app == "smb" and from_orig and flow.smb is not None:
            names = flow.smb.feed(data)
            if names:
                self.report.smb_names(flow, names, ts)
        elif flow.app == "ftp" and flow.ftp is not None:
            for addr, port in flow.ftp.feed(from_orig, data):
                if len(self._ftp_expected) > 10_000:  # bounded: forget the oldest
                    self._ftp_expected.pop(next(iter(self._ftp_expected)))
                self._ftp_expected[(addr, port)] = flow.ftp
        elif flow.app == "ftp-data" and flow.ftp_data is not None:
            buf = flow.ftp_data[1]
            buf += data[: max(0, self.config.max_body - len(buf))]
        elif flow.app == "smtp" and from_orig and flow.smtp is not None:
            for mail in flow.smtp.feed(data):
                self.report.mail(flow, mail, ts)
        elif flow.app == "dns":
            i = 0 if from_orig else 1
            if flow.dns_bufs is None:
                flow.dns_bufs = [b"", b""]
            msgs, flow.dns_bufs[i] = dns.split_tcp(flow.dns_bufs[i] + data)
            for m in msgs:
                self.report.dns_message(flow, m, ts)
