"""From a flow's protocol events to observations, through the pre-filter.

The engine (sensors.engine) keeps the flows and their bytes; the Reporter
turns what the extractors find in them (a DNS message, a ClientHello, a
certificate chain, an HTTP request or body, a mail, a file) into
Observation records on their ECS fields, filters and counts them, and
hands them on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sensors import decode as dec
from sensors.extract import dns, http, multipart, smtp, tls
from sensors.flow import Content, Counters, Flow, SensorConfig
from sensors.observation import Observation
from sensors.prefilter import PreFilter

_TRANSPORT = {
    dec.PROTO_TCP: "tcp",
    dec.PROTO_UDP: "udp",
    dec.PROTO_ICMP: "icmp",
    dec.PROTO_ICMPV6: "ipv6-icmp",
}


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

    def obs(self, flow: Flow, ts: float, protocol: str | None) -> Observation:
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

    def smb_names(self, flow: Flow, names: list[str], ts: float) -> None:
        obs = self.obs(flow, ts, "smb")
        for name in names:
            obs.add("file.path", name)
            base = name.replace("\\", "/").rsplit("/", 1)[-1]
            if base:
                obs.add("file.name", base)
        self.emit(obs)

    def dns_message(self, flow: Flow, payload: bytes, ts: float) -> None:
        msg = dns.parse(payload)
        obs = self.obs(flow, ts, "dns")
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
            self.emit(obs)

    def tls_client(self, flow: Flow, data: bytes, ts: float) -> None:
        flow.hello_buf += data
        hello = tls.hello_from_stream(flow.hello_buf)
        if hello is None:
            return
        flow.hello_buf = b""
        flow.tls_done = True
        obs = self.obs(flow, ts, "tls")
        if hello.server_name:
            obs.add("tls.client.server_name", hello.server_name)
        obs.add("tls.client.ja3", hello.ja3_hash)
        obs.add("tls.client.ja4", hello.ja4)
        self.emit(obs)

    def tls_server(self, flow: Flow, data: bytes, ts: float) -> None:
        assert flow.certs_buf is not None
        flow.certs_buf += data
        found = tls.certs_from_stream(flow.certs_buf)
        if found is None:
            return
        hello = tls.server_hello(flow.certs_buf)
        flow.certs_buf = None  # done with this direction, whatever came
        obs = self.obs(flow, ts, "tls")
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
            self.emit(obs)

    def mail(self, flow: Flow, mail: smtp.Mail, ts: float) -> None:
        obs = self.obs(flow, ts, "smtp")
        for address in mail.mail_from + mail.header_from:
            obs.add("email.from.address", address)
        for address in mail.rcpt_to + mail.header_to:
            obs.add("email.to.address", address)
        for address in mail.header_cc:
            obs.add("email.cc.address", address)
        self.emit(obs)
        for part in mail.parts:
            if part.data:
                self.file(
                    flow, ts, "smtp", part.data, part.name, "email.attachment", part.content_type
                )

    def file(
        self,
        flow: Flow,
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

    def http_item(self, flow: Flow, item: http.Request | http.Body, ts: float) -> None:
        if isinstance(item, http.Request):
            obs = self.obs(flow, ts, "http")
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
            self.emit(obs)
            return
        if not item.data:
            return
        mime_type = http.mime_type(item.headers)
        if item.from_client and multipart.is_multipart(mime_type) and self._upload(flow, item, ts):
            return
        source = "http.request.body" if item.from_client else "http.response.body"
        self.file(flow, ts, "http", item.data, http.file_name(item) or None, source, mime_type)

    def _upload(self, flow: Flow, body: http.Body, ts: float) -> bool:
        """The file parts of a multipart request body, each a file of its own (as Zeek's
        Files::IN_NAME sees them). The typed-in fields are not files: their values (a
        password, a token) stay on the wire, and no indicator names their hashes.
        False when the body is malformed (counted): it is then taken whole."""
        try:
            form = multipart.parse(body.data, multipart.boundary_of(body.headers["content-type"]))
        except multipart.MultipartError as err:
            self.counters.protocol_errors[f"http: {err}"] += 1
            return False
        if not form.complete and not body.truncated:
            self.counters.protocol_errors["http: multipart without closing boundary"] += 1
        for part in form.parts:
            if part.data and part.is_file:
                self.file(
                    flow, ts, "http", part.data, part.filename, "http.request.body", part.mime_type
                )
        return True
