"""Frame decoding, the pcap/pcapng reader (checked against scapy's) and reassembly."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import CookedLinux, Dot1Q, Ether
from scapy.utils import PcapNgWriter, RawPcapReader, wrpcap

from sensors import decode as dec
from sensors.analyzer import FlowState
from sensors.engine import Sensor, SensorConfig
from sensors.flowhash import community_id
from sensors.pcapfile import CaptureError, read_packets
from sensors.reassembly import Stream
from tests.conftest import corpus


def test_ethernet_vlan_qinq_ipv4_tcp() -> None:
    frame = bytes(
        Ether()
        / Dot1Q(vlan=10)
        / Dot1Q(vlan=20)
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / TCP(sport=1234, dport=80, flags="PA", seq=7)
        / b"hello"
    )
    pkt = dec.decode(dec.LINKTYPE_ETHERNET, frame)
    assert pkt is not None
    assert (pkt.src, pkt.dst) == (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    assert (pkt.proto, pkt.sport, pkt.dport, pkt.seq, pkt.payload) == (6, 1234, 80, 7, b"hello")


def test_ipv6_extension_header_and_cooked_capture() -> None:
    frame = bytes(
        CookedLinux(proto=0x86DD)
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrHopByHop()
        / UDP(sport=5353, dport=53)
        / (b"x" * 12)
    )
    pkt = dec.decode(dec.LINKTYPE_LINUX_SLL, frame)
    assert pkt is not None and pkt.proto == 17 and pkt.dport == 53 and pkt.payload == b"x" * 12


def test_ethernet_padding_is_not_payload() -> None:
    frame = bytes(Ether() / IP() / UDP(sport=1, dport=2) / b"ab") + b"\x00" * 20
    pkt = dec.decode(dec.LINKTYPE_ETHERNET, frame)
    assert pkt is not None and pkt.payload == b"ab"


@pytest.mark.parametrize("cut", [10, 20, 30, 40])
def test_truncated_frames_raise_decode_error(cut: int) -> None:
    frame = bytes(Ether() / IP() / TCP() / b"data")
    with pytest.raises(dec.DecodeError):
        dec.decode(dec.LINKTYPE_ETHERNET, frame[:cut])


def test_non_ip_is_none() -> None:
    assert dec.decode(dec.LINKTYPE_ETHERNET, bytes(Ether(type=0x0806) / (b"\x00" * 28))) is None


def test_reader_matches_scapy_on_corpus() -> None:
    pcap = corpus("zeek-traces", "dns-http", "opt.basic", "pcap", "wikipedia.pcap")
    ours = [(round(ts, 6), frame) for ts, _lt, frame in read_packets(pcap)]
    theirs = [(round(m.sec + m.usec / 1e6, 6), data) for data, m in RawPcapReader(str(pcap))]
    assert len(ours) == 136
    assert ours == theirs


def test_pcapng_reads_like_pcap(tmp_path: Path) -> None:
    pkts = [Ether() / IP(dst=f"10.0.0.{i}") / UDP() / b"x" for i in range(1, 6)]
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i
    ng = tmp_path / "t.pcapng"
    with PcapNgWriter(str(ng)) as w:
        for p in pkts:
            w.write(p)
    plain = tmp_path / "t.pcap"
    wrpcap(str(plain), pkts)
    a = list(read_packets(ng))
    b = list(read_packets(plain))
    assert [f for _, _, f in a] == [f for _, _, f in b]
    assert [round(t) for t, _, _ in a] == [1_700_000_000 + i for i in range(5)]


def test_truncated_pcap_names_file_and_packet(tmp_path: Path) -> None:
    src = corpus("zeek-traces", "dns-http", "opt.basic", "pcap", "wikipedia.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(src[:10_000])
    got = []
    with pytest.raises(CaptureError, match=r"cut\.pcap: truncated after packet 58"):
        for item in read_packets(cut):
            got.append(item)
    assert len(got) == 58  # every whole packet before the cut was delivered


def test_not_a_capture(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_text("hello\n")
    with pytest.raises(CaptureError, match="not a pcap or pcapng file"):
        list(read_packets(bad))


def test_reassembly_out_of_order_retransmission_and_wrap() -> None:
    s = Stream(depth=1000)
    base = 2**32 - 3  # sequence numbers wrap inside this stream
    s.syn(base - 1)
    assert s.add(base + 5, b"FGH") == b""  # gap: held
    assert s.add(base, b"ABCDE") == b"ABCDEFGH"
    assert s.add(base, b"ABCDE") == b""  # retransmission: nothing new
    assert s.add(base + 6, b"GHIJ") == b"IJ"  # overlap: only the new tail
    assert s.delivered == 10


def test_reassembly_depth_and_pending_cap() -> None:
    s = Stream(depth=4, max_pending=10)
    s.syn(0)
    assert s.add(1, b"abcdef") == b"abcd"
    assert s.done
    t = Stream(depth=100, max_pending=10)
    t.syn(0)
    t.add(50, b"x" * 11)  # a gap that would exceed the cap
    assert t.overflow and t.done


@settings(max_examples=300, deadline=None)
@given(
    proto=st.sampled_from([6, 17, 1, 58]),
    v6=st.booleans(),
    a=st.binary(min_size=16, max_size=16),
    b=st.binary(min_size=16, max_size=16),
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
)
def test_community_id_matches_the_reference(
    proto: int, v6: bool, a: bytes, b: bytes, sport: int, dport: int
) -> None:
    import communityid

    if not v6:
        a, b = a[:4], b[:4]
    if proto in (1, 58):
        sport, dport = sport % 256, dport % 256  # ICMP type and code
        assume((proto == 58) == v6)  # ICMPv6 over IPv6, ICMP over IPv4
    ref = communityid.CommunityID().calc(communityid.FlowTuple(proto, a, b, sport, dport))
    assert community_id(proto, a, b, sport, dport) == ref
    assert community_id(proto, b, a, dport, sport) == (
        ref if proto in (6, 17) else community_id(proto, b, a, dport, sport)
    )


def _dns_query(name: str) -> bytes:
    from scapy.layers.dns import DNS, DNSQR

    return bytes(DNS(id=9, rd=1, qd=DNSQR(qname=name)))


def _run(frames: list[bytes]) -> tuple[list[str], Sensor]:
    seen: list[str] = []
    sensor = Sensor(SensorConfig(), lambda o: seen.extend(o.values.get("dns.question.name", [])))
    for f in frames:
        sensor.packet(0.0, dec.LINKTYPE_ETHERNET, f)
    return seen, sensor


@pytest.mark.parametrize("order", ["in-order", "reversed"])
def test_ipv4_fragments_are_reassembled(order: str) -> None:
    from scapy.layers.inet import fragment

    name = "a-long-name-split-across-fragments." + "x" * 60 + ".example"
    pkt = IP(src="10.0.0.1", dst="10.0.0.53") / UDP(sport=5000, dport=53) / _dns_query(name)
    frags = [bytes(Ether() / f) for f in fragment(pkt, fragsize=24)]
    assert len(frags) > 3
    seen, sensor = _run(frags if order == "in-order" else frags[::-1])
    assert seen == [name]
    assert sensor.counters.fragments == len(frags)
    assert sensor.defrag.counters["reassembled"] == 1


def test_ipv6_fragments_are_reassembled() -> None:
    from scapy.layers.inet6 import IPv6ExtHdrFragment, fragment6

    name = "v6-fragmented." + "y" * 40 + "." + "z" * 40 + ".example"
    pkt = (
        IPv6(src="2001:db8::1", dst="2001:db8::53")
        / IPv6ExtHdrFragment()
        / UDP(sport=5000, dport=53)
        / _dns_query(name)
    )
    frags = [bytes(Ether() / f) for f in fragment6(pkt, 80)]
    assert len(frags) > 1
    seen, _sensor = _run(frags)
    assert seen == [name]


def test_overlapping_fragments_keep_the_first_copy() -> None:
    """An evasion attempt: a later fragment rewrites bytes already seen. First copy wins."""
    payload = bytes(UDP(sport=5000, dport=53) / _dns_query("good.example"))
    evil = payload.replace(b"good", b"evil")
    ip = {"src": "10.0.0.1", "dst": "10.0.0.53", "id": 77, "proto": 17}
    a = Ether() / IP(flags="MF", frag=0, **ip) / payload[:16]
    b = Ether() / IP(flags="MF", frag=2, **ip) / payload[16:24]
    rewrite = Ether() / IP(flags="MF", frag=1, **ip) / evil[8:24]  # over bytes already seen
    c = Ether() / IP(flags=0, frag=3, **ip) / payload[24:]
    seen, sensor = _run([bytes(a), bytes(b), bytes(rewrite), bytes(c)])
    assert seen == ["good.example"]
    assert sensor.defrag.counters["overlap"] >= 1


def test_fragment_memory_is_bounded() -> None:
    from sensors.fragments import Defragmenter

    d = Defragmenter(max_datagrams=10)
    for i in range(50):
        frag = dec.Fragment(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", i, 17, 0, True, b"x" * 8)
        assert d.add(frag, float(i)) is None
    assert len(d.pending) == 10 and d.counters["evicted"] == 40
    d.expire(1000.0)
    assert not d.pending and d.counters["expired"] == 10


def test_smb2_create_names_including_compound_requests() -> None:
    from scapy.layers.netbios import NBTSession
    from scapy.layers.smb2 import SMB2_Create_Request, SMB2_Header

    def create(name: str, next_command: int = 0) -> bytes:
        return bytes(
            SMB2_Header(Command=5, NextCommand=next_command) / SMB2_Create_Request(Name=name)
        )

    first = create("docs\\informe.docx")
    first = create("docs\\informe.docx", next_command=(len(first) + 7) // 8 * 8)
    first += b"\x00" * ((8 - len(first) % 8) % 8)
    compound = first + create("tmp\\payload.exe")
    message = struct.pack(">I", len(compound)) + compound
    assert bytes(NBTSession() / SMB2_Header())[:1] == b"\x00"  # the framing we parse
    seen: list[tuple[str, list[str]]] = []
    sensor = Sensor(
        SensorConfig(),
        lambda o: seen.extend((k, v) for k, v in o.values.items() if k.startswith("file.")),
    )
    c, s = "10.3.0.1", "10.3.0.2"
    for p in (
        Ether() / IP(src=c, dst=s) / TCP(sport=50000, dport=445, flags="S", seq=10),
        Ether()
        / IP(src=c, dst=s)
        / TCP(sport=50000, dport=445, flags="PA", seq=11)
        / message[:30],  # split across segments
        Ether() / IP(src=c, dst=s) / TCP(sport=50000, dport=445, flags="PA", seq=41) / message[30:],
    ):
        sensor.packet(0.0, dec.LINKTYPE_ETHERNET, bytes(p))
    assert dict(seen) == {
        "file.path": ["docs\\informe.docx", "tmp\\payload.exe"],
        "file.name": ["informe.docx", "payload.exe"],
    }


def test_ja4_matches_the_published_example() -> None:
    """FoxIO's JA4 README example: t13d1516h2_8daaf6152771_e5627efa2ab1."""
    from sensors.extract.tls import hello_from_stream

    def ext(etype: int, body: bytes) -> bytes:
        return struct.pack(">HH", etype, len(body)) + body

    grease = 0x0A0A
    ciphers = [
        grease,
        0x1301,
        0x1302,
        0x1303,
        0xC02B,
        0xC02F,
        0xC02C,
        0xC030,
        0xCCA9,
        0xCCA8,
        0xC013,
        0xC014,
        0x009C,
        0x009D,
        0x002F,
        0x0035,
    ]
    sigalgs = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
    name = b"example.com"
    exts = [
        ext(grease, b""),
        ext(0x0000, struct.pack(">HBH", len(name) + 3, 0, len(name)) + name),
        ext(0x0017, b""),
        ext(0xFF01, b"\x00"),
        ext(0x000A, b"\x00\x04\x00\x1d\x00\x17"),
        ext(0x000B, b"\x01\x00"),
        ext(0x0023, b""),
        ext(0x0010, b"\x00\x03\x02h2"),
        ext(0x0005, b"\x01\x00\x00\x00\x00"),
        ext(
            0x000D,
            struct.pack(">H", 2 * len(sigalgs)) + b"".join(struct.pack(">H", x) for x in sigalgs),
        ),
        ext(0x0012, b""),
        ext(0x0033, b"\x00\x00"),
        ext(0x002D, b"\x01\x01"),
        ext(0x002B, b"\x06" + struct.pack(">HHH", grease, 0x0304, 0x0303)),
        ext(0x001B, b"\x02\x00\x02"),
        ext(0x4469, b"\x00\x03\x02h2"),
        ext(0x0015, b"\x00" * 4),
    ]
    body = (
        struct.pack(">H", 0x0303)
        + bytes(32)
        + b"\x00"
        + struct.pack(">H", 2 * len(ciphers))
        + b"".join(struct.pack(">H", c) for c in ciphers)
        + b"\x01\x00"
        + struct.pack(">H", sum(map(len, exts)))
        + b"".join(exts)
    )
    record = (
        b"\x16\x03\x01"
        + struct.pack(">H", len(body) + 4)
        + b"\x01"
        + len(body).to_bytes(3, "big")
        + body
    )
    hello = hello_from_stream(record)
    assert hello is not None and hello.server_name == "example.com"
    assert hello.ja4 == "t13d1516h2_8daaf6152771_e5627efa2ab1"


def test_reassembly_memory_cap_evicts_and_counts() -> None:
    cap = 64 * 1024
    sensor = Sensor(SensorConfig(max_reassembly_bytes=cap), lambda o: None)
    for i in range(100):  # each flow holds 2 KiB behind a gap that never fills
        c, port = f"10.7.{i // 250}.{i % 250 + 1}", 20000 + i
        for p in (
            Ether() / IP(src=c, dst="10.7.255.1") / TCP(sport=port, dport=80, flags="S", seq=0),
            Ether()
            / IP(src=c, dst="10.7.255.1")
            / TCP(sport=port, dport=80, flags="PA", seq=1)
            / b"GET / HTTP/1.1\r\n",
            Ether()
            / IP(src=c, dst="10.7.255.1")
            / TCP(sport=port, dport=80, flags="PA", seq=5000)
            / (b"x" * 2048),
        ):
            sensor.packet(0.0, dec.LINKTYPE_ETHERNET, bytes(p))
        assert sensor.reassembly_bytes <= cap
    held = sum(s.pending_bytes for f in sensor.flows.values() if f.streams for s in f.streams)
    assert held == sensor.reassembly_bytes > 0
    assert sensor.counters.flows_evicted_memory > 0
    assert len(sensor.flows) + sensor.counters.flows_evicted_memory == 100


def test_tunnels_are_unwrapped() -> None:
    from scapy.layers.inet import GRE
    from scapy.layers.vxlan import VXLAN

    inner = IP(src="10.8.0.1", dst="10.8.0.2") / TCP(sport=5555, dport=80, flags="PA") / b"GET"
    outer = Ether() / IP(src="192.168.9.1", dst="192.168.9.2")
    for wrapped in (
        outer / GRE(proto=0x6558) / Ether() / inner,  # GRE transparent bridging (mirror ports)
        outer / GRE(proto=0x0800) / inner,
        outer / UDP(sport=40000, dport=4789) / VXLAN(vni=7) / Ether() / inner,
        outer / inner,  # IP in IP
    ):
        pkt = dec.decode(dec.LINKTYPE_ETHERNET, bytes(wrapped))
        assert pkt is not None
        assert (pkt.src, pkt.dport, pkt.payload) == (bytes([10, 8, 0, 1]), 80, b"GET")


def test_tunnel_nesting_is_bounded() -> None:
    packet = IP(src="10.8.0.1", dst="10.8.0.2") / UDP(sport=1, dport=2)
    for _ in range(5):
        packet = IP(src="192.168.9.1", dst="192.168.9.2") / packet
    with pytest.raises(dec.DecodeError, match="tunnel_depth"):
        dec.decode(dec.LINKTYPE_ETHERNET, bytes(Ether() / packet))


def test_http_half_close_keeps_the_response() -> None:
    """The client half-closes after its request; the body that runs to the server's
    close still arrives whole and is hashed."""
    import hashlib

    body = b"<html>" + b"z" * 3000 + b"</html>"
    c, s = "10.6.0.1", "10.6.0.2"
    req = b"GET /page.html HTTP/1.0\r\nHost: old.example\r\n\r\n"
    resp = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + body
    frames = [
        Ether() / IP(src=c, dst=s) / TCP(sport=45000, dport=80, flags="S", seq=0),
        Ether() / IP(src=s, dst=c) / TCP(sport=80, dport=45000, flags="SA", seq=100, ack=1),
        Ether() / IP(src=c, dst=s) / TCP(sport=45000, dport=80, flags="PA", seq=1) / req,
        Ether() / IP(src=c, dst=s) / TCP(sport=45000, dport=80, flags="FA", seq=1 + len(req)),
        Ether() / IP(src=s, dst=c) / TCP(sport=80, dport=45000, flags="PA", seq=101) / resp[:1400],
        Ether() / IP(src=s, dst=c) / TCP(sport=80, dport=45000, flags="PA", seq=1501) / resp[1400:],
        Ether() / IP(src=s, dst=c) / TCP(sport=80, dport=45000, flags="FA", seq=101 + len(resp)),
    ]
    hashes: list[str] = []
    sensor = Sensor(SensorConfig(), lambda o: hashes.extend(o.values.get("file.hash.sha256", [])))
    for f in frames:
        sensor.packet(0.0, dec.LINKTYPE_ETHERNET, bytes(f))
    assert hashes == [hashlib.sha256(body).hexdigest()]  # before finish(): the FIN ended it


def test_a_closed_connection_keeps_only_its_key() -> None:
    """After both FINs (or a RST) the flow's buffers and parsers go at once, not at its
    idle timeout; a late ACK takes the dead path and starts no second flow."""
    c, s = "10.7.0.1", "10.7.0.2"
    req = b"GET /a.html HTTP/1.1\r\nHost: closed.example\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

    def conn(sport: int, end: str) -> list[bytes]:
        pkts = [
            IP(src=c, dst=s) / TCP(sport=sport, dport=80, flags="S", seq=0),
            IP(src=s, dst=c) / TCP(sport=80, dport=sport, flags="SA", seq=100, ack=1),
            IP(src=c, dst=s) / TCP(sport=sport, dport=80, flags="PA", seq=1) / req,
            IP(src=s, dst=c) / TCP(sport=80, dport=sport, flags="PA", seq=101) / resp,
        ]
        if end == "fin":
            pkts += [
                IP(src=c, dst=s) / TCP(sport=sport, dport=80, flags="FA", seq=1 + len(req)),
                IP(src=s, dst=c) / TCP(sport=80, dport=sport, flags="FA", seq=101 + len(resp)),
            ]
        else:
            pkts.append(IP(src=c, dst=s) / TCP(sport=sport, dport=80, flags="R", seq=1 + len(req)))
        pkts.append(IP(src=c, dst=s) / TCP(sport=sport, dport=80, flags="A", seq=2 + len(req)))
        return [bytes(Ether() / p) for p in pkts]

    seen: list[tuple[str | None, list[str]]] = []
    sensor = Sensor(SensorConfig(), lambda o: seen.append((o.protocol, sorted(o.values))))
    for frame in conn(41000, "fin") + conn(41001, "rst"):
        sensor.packet(0.0, dec.LINKTYPE_ETHERNET, frame)
    assert sensor.counters.flows == 2  # the late ACKs joined their closed flows
    for flow in sensor.flows.values():
        assert flow.state is FlowState.DONE and flow.streams is None and flow.analyzer is None
    http_obs = [values for proto, values in seen if proto == "http"]
    assert http_obs.count(["url.domain", "url.original"]) == 2  # each request, once
    assert sum("file.hash.sha256" in values for values in http_obs) == 2  # each body, hashed
    # A connection still open, then a packet 20 s on: the sweep lets the closed keys
    # go after tcp_closed_s (5 s, as Zeek's tcp_close_delay), the open one stays.
    still_open = conn(41002, "fin")[:4]
    for frame in still_open:
        sensor.packet(1.0, dec.LINKTYPE_ETHERNET, frame)
    sensor.packet(21.0, dec.LINKTYPE_ETHERNET, still_open[2])
    assert [key[2:5:2] for key in sensor.flows] == [(41002, 80)]


def test_truncated_pcapng_delivers_every_whole_packet_first(tmp_path: Path) -> None:
    """pcapng is read in lists of packets: a cut still comes after all it preceded."""
    plain = corpus("zeek-traces", "dns-http", "opt.basic", "pcap", "wikipedia.pcap")
    frames = [frame for _ts, _lt, frame in read_packets(plain)]
    ng = tmp_path / "whole.pcapng"
    writer = PcapNgWriter(str(ng))
    for frame in frames:
        writer.write(Ether(frame))
    writer.close()
    assert [f for _, _, f in read_packets(ng)] == frames
    data = ng.read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[: len(data) * 2 // 3])
    got = []
    with pytest.raises(CaptureError, match=r"cut\.pcapng: truncated after packet \d+"):
        for _ts, _lt, frame in read_packets(cut):
            got.append(frame)
    assert 0 < len(got) < len(frames) and got == frames[: len(got)]
