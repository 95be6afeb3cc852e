"""The sensor engine: packets in; observations (and content to scan) out.

Decodes each frame, keeps a bounded flow table keyed like Community ID,
reassembles TCP, hands each flow's bytes to the protocol extractor that fits
(by port for DNS, by content for HTTP and TLS), and counts every packet it
cannot use by reason, without stopping.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable

from sensors import decode as dec
from sensors.extract import dns, ftp, http, smb, smtp, tls
from sensors.flow import Content, Counters, Flow, SensorConfig
from sensors.flowhash import community_id
from sensors.fragments import Defragmenter
from sensors.observation import Observation
from sensors.prefilter import PreFilter
from sensors.reassembly import Stream

__all__ = ["Content", "Counters", "Flow", "Sensor", "SensorConfig"]

_FIN_RST = dec.TCP_FIN | dec.TCP_RST
_TRANSPORT = {
    dec.PROTO_TCP: "tcp",
    dec.PROTO_UDP: "udp",
    dec.PROTO_ICMP: "icmp",
    dec.PROTO_ICMPV6: "ipv6-icmp",
}


def quiet_gc() -> None:
    """Leave garbage collection to the sensor's clock, for a process that runs the engine.

    Python's cycle collector runs each time 700 more containers live than
    before; while the flow table grows that is every few hundred packets, and
    each pass walks the young flows: up to a fifth of the time. The engine
    makes no reference cycles (tests/test_compiled.py checks): its garbage
    goes by reference counting. So automatic passes are turned off, and
    SensorService.tick() runs a full one every GC_INTERVAL_S for whatever else
    in the process (HTTP client, TLS) may leave cycles.
    """
    gc.collect()
    gc.freeze()  # what start-up built is never garbage: leave it out of every pass
    gc.disable()


GC_INTERVAL_S = 60.0


class Sensor:
    def __init__(
        self,
        config: SensorConfig,
        emit: Callable[[Observation], None],
        on_content: Callable[[Content], None] | None = None,
        prefilter: PreFilter | None = None,
    ) -> None:
        self.config = config
        self.emit = emit
        self.on_content = on_content
        self.prefilter = prefilter
        self.flows: dict[tuple[int, bytes, int, bytes, int], Flow] = {}
        self.counters = Counters()
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
                self._dns_message(flow, pkt.payload, ts)
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
        self._emit(self._obs(flow, ts, None))
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

    def _obs(self, flow: Flow, ts: float, protocol: str | None) -> Observation:
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

    def observe(self, obs: Observation) -> None:
        """Take an observation made elsewhere (the deep backend) through the same filter."""
        self._emit(obs)

    def _emit(self, obs: Observation) -> None:
        if self.prefilter is not None:
            reason = self.prefilter.drop_reason(obs)
            if reason:
                self.counters.filtered[reason] += 1
                return
        self.counters.observations += 1
        self.emit(obs)

    def _sweep(self, now: float) -> None:
        cfg = self.config
        for key, flow in list(self.flows.items()):
            if flow.proto != dec.PROTO_TCP:
                idle = cfg.udp_idle_s
            elif flow.fins == 3:  # closed: only its last packets are still to come
                idle = cfg.tcp_closed_s
            else:
                idle = cfg.tcp_idle_s
            if now - flow.last > idle:
                self._release(flow)
                self._close(flow, flow.last)
                del self.flows[key]
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
                    self._http_item(flow, item, ts)
            flow.http = None
        self._finish_ftp_data(flow, ts)

    def _finish_ftp_data(self, flow: Flow, ts: float) -> None:
        if flow.ftp_data is not None:
            control, data = flow.ftp_data
            flow.ftp_data = None
            if data and control.transferring_file:
                self._file(flow, ts, "ftp-data", bytes(data), control.filename, "ftp.data")

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
                    self._http_item(flow, item, ts)
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
                self._http_item(flow, item, ts)
        elif flow.app == "tls":
            if from_orig and not flow.tls_done:
                self._tls(flow, data, ts)
            elif not from_orig and flow.certs_buf is not None:
                self._tls_server(flow, data, ts)
        elif flow.app == "smb" and from_orig and flow.smb is not None:
            names = flow.smb.feed(data)
            if names:
                obs = self._obs(flow, ts, "smb")
                for name in names:
                    obs.add("file.path", name)
                    base = name.replace("\\", "/").rsplit("/", 1)[-1]
                    if base:
                        obs.add("file.name", base)
                self._emit(obs)
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
                self._mail(flow, mail, ts)
        elif flow.app == "dns":
            i = 0 if from_orig else 1
            if flow.dns_bufs is None:
                flow.dns_bufs = [b"", b""]
            msgs, flow.dns_bufs[i] = dns.split_tcp(flow.dns_bufs[i] + data)
            for m in msgs:
                self._dns_message(flow, m, ts)

    def _dns_message(self, flow: Flow, payload: bytes, ts: float) -> None:
        msg = dns.parse(payload)
        obs = self._obs(flow, ts, "dns")
        seen = flow.dns_seen
        if seen is None:
            seen = flow.dns_seen = set()
        if not msg.is_response:
            seen.add(msg.trans_id)
            for q in msg.questions:
                obs.add("dns.question.name", q.lower())
        else:
            if msg.trans_id not in seen:  # the query went unseen: name it once here
                # (an mDNS announcement has no question: its answers' owners stand in, as in Zeek)
                for q in msg.questions or msg.owners[:1]:
                    obs.add("dns.question.name", q.lower())
            seen.discard(msg.trans_id)
            for ans in msg.answers:
                obs.add("dns.answers.data", ans if ans.startswith("TXT ") else ans.lower())
        if obs.values:
            self._emit(obs)

    def _tls(self, flow: Flow, data: bytes, ts: float) -> None:
        flow.hello_buf += data
        hello = tls.hello_from_stream(flow.hello_buf)
        if hello is None:
            return
        flow.hello_buf = b""
        flow.tls_done = True
        obs = self._obs(flow, ts, "tls")
        if hello.server_name:
            obs.add("tls.client.server_name", hello.server_name)
        obs.add("tls.client.ja3", hello.ja3_hash)
        obs.add("tls.client.ja4", hello.ja4)
        self._emit(obs)
        if flow.certs_buf is None:
            self._retire(flow)  # both sides read: the rest is encrypted, skip it cheaply

    def _tls_server(self, flow: Flow, data: bytes, ts: float) -> None:
        assert flow.certs_buf is not None
        flow.certs_buf += data
        found = tls.certs_from_stream(flow.certs_buf)
        if found is None:
            return
        hello = tls.server_hello(flow.certs_buf)
        flow.certs_buf = None  # done with this direction, whatever came
        obs = self._obs(flow, ts, "tls")
        if hello is not None:
            obs.add("tls.server.ja3s", hello.ja3s_hash)
        if not isinstance(found, bool):
            for der in found.chain:  # every certificate of the chain, as Zeek's X509::IN_CERT
                digest = hashlib.sha1(der, usedforsecurity=False).hexdigest()
                obs.add("tls.server.hash.sha1", digest)
            if found.common_name:
                obs.add("tls.server.x509.subject.common_name", found.common_name)
            for name in found.alt_names:
                obs.add("tls.server.x509.alternative_names", name)
        if obs.values:
            self._emit(obs)
        if flow.tls_done:
            self._retire(flow)  # both sides read: the rest is encrypted, skip it cheaply

    def _mail(self, flow: Flow, mail: smtp.Mail, ts: float) -> None:
        obs = self._obs(flow, ts, "smtp")
        for address in mail.mail_from + mail.header_from:
            obs.add("email.from.address", address)
        for address in mail.rcpt_to + mail.header_to:
            obs.add("email.to.address", address)
        for address in mail.header_cc:
            obs.add("email.cc.address", address)
        self._emit(obs)
        for part in mail.parts:
            if part.data:
                self._file(flow, ts, "smtp", part.data, part.name, "email.attachment")

    def _file(
        self, flow: Flow, ts: float, protocol: str, data: bytes, name: str | None, source: str
    ) -> None:
        """A file seen in a flow: its name and hashes, and its bytes for YARA."""
        obs = self._obs(flow, ts, protocol)
        if name:
            obs.add("file.name", name)
        obs.add("file.hash.md5", hashlib.md5(data, usedforsecurity=False).hexdigest())
        obs.add("file.hash.sha1", hashlib.sha1(data, usedforsecurity=False).hexdigest())
        obs.add("file.hash.sha256", hashlib.sha256(data).hexdigest())
        self._emit(obs)
        if self.on_content is not None:
            self.counters.contents += 1
            self.on_content(Content(obs, data, source))

    def _http_item(self, flow: Flow, item: http.Request | http.Body, ts: float) -> None:
        if isinstance(item, http.Request):
            obs = self._obs(flow, ts, "http")
            host = item.headers.get("host", "")
            domain = http.host_only(host) or flow.dst_ip
            if domain:
                obs.add("url.domain", domain)
            uri = item.uri
            if not uri.lower().startswith(("http://", "https://")):
                uri = f"http://{host or flow.dst_ip}{uri}"
            obs.add("url.original", uri)
            for header, ecs in (
                ("user-agent", "user_agent.original"),
                ("referer", "http.request.referrer"),
            ):
                if item.headers.get(header):
                    obs.add(ecs, item.headers[header])
            forwarded = item.headers.get("x-forwarded-for")
            for hop in forwarded.split(",") if forwarded else ():
                if http.is_ip(hop.strip()):  # the clients behind the proxy
                    obs.add("network.forwarded_ip", hop.strip())
            self._emit(obs)
            return
        if item.data:
            source = "http.request.body" if item.from_client else "http.response.body"
            self._file(flow, ts, "http", item.data, http.file_name(item) or None, source)
