"""Sensor behaviour the README states and no other test pinned down: the flow table's
bound and idle timeouts, and the HTTP request fields and body names."""

from __future__ import annotations

import hashlib
import zlib

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from sensors import decode as dec
from sensors.analyzer import FlowState
from sensors.engine import Sensor, SensorConfig
from sensors.observation import Observation


def _udp(sport: int) -> bytes:
    return bytes(Ether() / IP(src="10.3.0.1", dst="10.3.0.2") / UDP(sport=sport, dport=9999))


def _ports(sensor: Sensor) -> list[int]:
    return sorted(flow.ends.sport for flow in sensor.flows.values())


def test_the_flow_table_is_bounded_and_idle_flows_go() -> None:
    small = Sensor(SensorConfig(max_flows=3), lambda o: None)
    for sport in range(1001, 1006):
        small.packet(0.0, dec.LINKTYPE_ETHERNET, _udp(sport))
    assert small.counters.flows_evicted == 2 and _ports(small) == [1003, 1004, 1005]

    sensor = Sensor(SensorConfig(), lambda o: None)  # 60 s for UDP, 300 s for TCP
    syn = Ether() / IP(src="10.3.0.1", dst="10.3.0.2") / TCP(sport=2000, dport=443, flags="S")
    sensor.packet(0.0, dec.LINKTYPE_ETHERNET, _udp(3000))
    sensor.packet(0.0, dec.LINKTYPE_ETHERNET, bytes(syn))
    sensor.packet(59.0, dec.LINKTYPE_ETHERNET, _udp(3001))
    assert _ports(sensor) == [2000, 3000, 3001]
    sensor.packet(70.0, dec.LINKTYPE_ETHERNET, _udp(3002))  # the idle UDP flow is gone
    assert _ports(sensor) == [2000, 3001, 3002]
    sensor.packet(290.0, dec.LINKTYPE_ETHERNET, _udp(3003))  # TCP: idle, not yet 300 s
    assert 2000 in _ports(sensor)
    sensor.packet(310.0, dec.LINKTYPE_ETHERNET, _udp(3004))
    assert _ports(sensor) == [3003, 3004]


def _http(request: bytes, response: bytes) -> list[Observation]:
    c, s = "10.4.0.1", "10.4.0.2"
    frames = [
        IP(src=c, dst=s) / TCP(sport=46000, dport=80, flags="S", seq=0),
        IP(src=s, dst=c) / TCP(sport=80, dport=46000, flags="SA", seq=100, ack=1),
        IP(src=c, dst=s) / TCP(sport=46000, dport=80, flags="PA", seq=1) / request,
        IP(src=s, dst=c) / TCP(sport=80, dport=46000, flags="PA", seq=101) / response,
    ]
    seen: list[Observation] = []
    sensor = Sensor(SensorConfig(), seen.append)
    for frame in frames:
        sensor.packet(0.0, dec.LINKTYPE_ETHERNET, bytes(Ether() / frame))
    sensor.finish()
    return [o for o in seen if o.protocol == "http"]


def test_http_request_fields_and_bodies_named_and_hashed() -> None:
    body = b"MZ" + b"\x90" * 500
    squeezed = zlib.compress(body)
    request = (
        b"GET /descargas/setup.exe?v=2 HTTP/1.1\r\nHost: files.example:8080\r\n"
        b"User-Agent: curl/8.0\r\nReferer: http://portal.example/inicio\r\n"
        b"X-Forwarded-For: 198.51.100.7, not-an-address\r\n\r\n"
    )
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n"
        % len(squeezed)
    ) + squeezed
    req, got = _http(request, response)
    assert req.values == {
        "url.domain": ["files.example"],
        "url.original": ["http://files.example:8080/descargas/setup.exe?v=2"],
        "user_agent.original": ["curl/8.0"],
        "http.request.referrer": ["http://portal.example/inicio"],
        "network.forwarded_ip": ["198.51.100.7"],
    }
    assert got.values["file.name"] == ["setup.exe"]  # named from the URI
    assert got.values["file.hash.sha256"] == [hashlib.sha256(body).hexdigest()]  # decoded

    disposition = (
        b'HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename="factura.pdf"\r\n'
        b"Content-Length: 4\r\n\r\n%PDF"
    )
    _req, named = _http(b"GET /get?id=7 HTTP/1.1\r\nHost: files.example\r\n\r\n", disposition)
    assert named.values["file.name"] == ["factura.pdf"]
    assert named.values["file.hash.md5"] == [hashlib.md5(b"%PDF").hexdigest()]


def test_dns_over_tcp_is_read_across_segments() -> None:
    from scapy.layers.dns import DNS, DNSQR

    query = bytes(DNS(id=7, rd=1, qd=DNSQR(qname="consulta-tcp.example")))
    framed = len(query).to_bytes(2, "big") + query  # RFC 1035 4.2.2: a length, then the message
    c, s = "10.5.0.1", "10.5.0.2"
    frames = [
        IP(src=c, dst=s) / TCP(sport=47000, dport=53, flags="S", seq=0),
        IP(src=s, dst=c) / TCP(sport=53, dport=47000, flags="SA", seq=100, ack=1),
        IP(src=c, dst=s) / TCP(sport=47000, dport=53, flags="PA", seq=1) / framed[:9],
        IP(src=c, dst=s) / TCP(sport=47000, dport=53, flags="PA", seq=10) / framed[9:],
    ]
    seen: list[Observation] = []
    sensor = Sensor(SensorConfig(), seen.append)
    for frame in frames:
        sensor.packet(0.0, dec.LINKTYPE_ETHERNET, bytes(Ether() / frame))
    sensor.finish()
    names = [o.values.get("dns.question.name") for o in seen if o.protocol == "dns"]
    assert names == [["consulta-tcp.example"]]


def test_the_shipped_unit_and_configuration_load() -> None:
    """deploy/: every key of the commented sensor.toml is a setting the sensor takes,
    and the systemd unit runs `vigia sensor run` on that file."""
    from pathlib import Path

    from sensors.config import load

    deploy = Path(__file__).resolve().parent.parent / "deploy"
    settings = load(deploy / "sensor.toml")
    assert settings.spool_policy == "drop_oldest" and settings.metrics_port == 9109
    assert settings.allow_networks == ("10.255.0.0/16",) and settings.promisc is True
    unit = (deploy / "vigia-sensor.service").read_text()
    start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert " sensor run --config /etc/vigia/sensor.toml " in start


def test_every_link_type_named_in_the_status_decodes() -> None:
    """Raw IP, BSD loopback/null and Linux cooked v2 (v1 and Ethernet: tests/test_decode.py),
    with TCP, UDP and ICMP above."""
    from scapy.layers.inet import ICMP
    from scapy.layers.inet6 import IPv6

    v4 = bytes(IP(src="10.8.0.1", dst="10.8.0.2") / TCP(sport=1111, dport=80) / b"tcp")
    v6 = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=2222, dport=53) / b"udp")
    icmp = bytes(IP(src="10.8.0.1", dst="10.8.0.2") / ICMP(type=8, code=0) / b"ping")
    sll2 = b"\x08\x00" + bytes(18)  # protocol, then reserved, ifindex, type and address
    cases = [
        (dec.LINKTYPE_RAW, v4, 6, b"tcp"),
        (dec.LINKTYPE_RAW, v6, 17, b"udp"),
        (dec.LINKTYPE_IPV6, v6, 17, b"udp"),
        (dec.LINKTYPE_NULL, (2).to_bytes(4, "little") + v4, 6, b"tcp"),
        (dec.LINKTYPE_LOOP, (2).to_bytes(4, "big") + icmp, 1, b""),  # ICMP: no payload kept
        (dec.LINKTYPE_LINUX_SLL2, sll2 + v4, 6, b"tcp"),
    ]
    for linktype, frame, proto, payload in cases:
        pkt = dec.decode(linktype, frame)
        assert pkt is not None and (pkt.proto, pkt.payload) == (proto, payload), linktype


def test_a_flow_with_nothing_more_to_extract_lets_go_of_its_state_before_it_closes() -> None:
    """TLS once both handshakes are seen, an unknown protocol, a protocol error: the flow
    keeps its key (and its counters) but no buffers or parsers, without waiting for a FIN."""
    from sensors.pcapfile import read_packets
    from tests.conftest import corpus

    sensor = Sensor(SensorConfig(), lambda o: None)
    tls = corpus("zeek-traces", "tls", "scripts.base.protocols.ssl.basic", "pcap")
    for ts, linktype, frame in read_packets(tls / "tls-conn-with-extensions.pcap"):
        pkt = dec.decode(linktype, frame)
        if pkt is not None and pkt.proto == dec.PROTO_TCP and pkt.flags & 0x01:
            break  # the first FIN: what follows is the close
        sensor.packet(ts, linktype, frame)
    c, s = "10.9.0.1", "10.9.0.2"
    for sport, dport, data in (
        (40000, 9999, b"\x00\x01binary-protocol"),  # nothing we parse
        (40001, 80, b"NOT HTTP AT ALL\x00\x00\r\n\r\n"),  # HTTP's port, not HTTP
    ):
        for frame in (
            IP(src=c, dst=s) / TCP(sport=sport, dport=dport, flags="S", seq=0),
            IP(src=c, dst=s) / TCP(sport=sport, dport=dport, flags="PA", seq=1) / data,
        ):
            sensor.packet(1.0, dec.LINKTYPE_ETHERNET, bytes(Ether() / frame))
    flows = {flow.ends.dport: flow for flow in sensor.flows.values()}
    assert set(flows) == {443, 9999, 80}
    for flow in flows.values():
        assert flow.state is FlowState.DONE, flow.ends.dport
        assert flow.streams is None and flow.analyzer is None
