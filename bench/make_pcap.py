"""Write a synthetic but realistic pcap: N client flows of DNS, HTTP and TLS.

Each client makes a DNS lookup, an HTTP request for an object of
`--object-kb` KiB and a TLS connection that receives as much, both replies
cut into MSS-sized segments as on a real link. Each flow is built once with
scapy as a template, then stamped out with a
different client address and port per copy (checksums are left as the
template's: neither tool under test validates them by default).

    python bench/make_pcap.py OUT.pcap [--flows 50000]
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

CLIENT, DNS_SERVER, WEB = "10.0.0.1", "10.0.255.53", "192.0.2.80"


MSS = 1448


def _tcp_flow(sport: int, dport: int, client_data: bytes, server_data: bytes) -> list[bytes]:
    """Handshake, the client's request, the server's reply in MSS-sized segments, FINs."""
    c, s = dict(src=CLIENT, dst=WEB), dict(src=WEB, dst=CLIENT)
    seq_c, seq_s = 1000, 5000
    pk = [
        Ether() / IP(**c) / TCP(sport=sport, dport=dport, flags="S", seq=seq_c),
        Ether() / IP(**s) / TCP(sport=dport, dport=sport, flags="SA", seq=seq_s, ack=seq_c + 1),
        Ether() / IP(**c) / TCP(sport=sport, dport=dport, flags="A", seq=seq_c + 1, ack=seq_s + 1),
        Ether() / IP(**c) / TCP(sport=sport, dport=dport, flags="PA", seq=seq_c + 1) / client_data,
    ]
    for off in range(0, len(server_data), MSS):
        seg = server_data[off : off + MSS]
        pk.append(
            Ether() / IP(**s) / TCP(sport=dport, dport=sport, flags="PA", seq=seq_s + 1 + off) / seg
        )
        if off // MSS % 2:  # delayed ACKs: one for every two segments
            pk.append(
                Ether()
                / IP(**c)
                / TCP(sport=sport, dport=dport, flags="A", seq=seq_c + 1 + len(client_data))
            )
    end_c, end_s = seq_c + 1 + len(client_data), seq_s + 1 + len(server_data)
    pk.append(Ether() / IP(**c) / TCP(sport=sport, dport=dport, flags="FA", seq=end_c))
    pk.append(Ether() / IP(**s) / TCP(sport=dport, dport=sport, flags="FA", seq=end_s))
    return [bytes(p) for p in pk]


def client_hello(server_name: str) -> bytes:
    """A TLS 1.2 ClientHello record with SNI, supported groups and point formats."""
    sni = server_name.encode()
    ext_sni = struct.pack(">HHHBH", 0, len(sni) + 5, len(sni) + 3, 0, len(sni)) + sni
    ext_groups = struct.pack(">HHH", 10, 8, 6) + struct.pack(">HHH", 29, 23, 24)
    ext_formats = struct.pack(">HHB", 11, 2, 1) + b"\x00"
    exts = ext_sni + ext_groups + ext_formats
    ciphers = struct.pack(">HHHH", 0xC02F, 0xC030, 0x009E, 0x1301)
    body = (
        struct.pack(">H", 0x0303)
        + bytes(32)
        + b"\x00"
        + struct.pack(">H", len(ciphers))
        + ciphers
        + b"\x01\x00"
        + struct.pack(">H", len(exts))
        + exts
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(handshake)) + handshake


def templates(object_kb: int = 2) -> list[bytes]:
    name = "www.example-ministerio.gob.bo"
    dns = [
        bytes(
            Ether()
            / IP(src=CLIENT, dst=DNS_SERVER)
            / UDP(sport=40000, dport=53)
            / DNS(id=7, rd=1, qd=DNSQR(qname=name))
        ),
        bytes(
            Ether()
            / IP(src=DNS_SERVER, dst=CLIENT)
            / UDP(sport=53, dport=40000)
            / DNS(id=7, qr=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, rdata=WEB))
        ),
    ]
    body = b"<html>" + bytes(range(256)) * (object_kb * 4) + b"</html>"
    http = _tcp_flow(
        40001,
        80,
        f"GET /portal/index.html?id=1 HTTP/1.1\r\nHost: {name}\r\n"
        "User-Agent: Mozilla/5.0 (bench)\r\nReferer: http://gob.bo/\r\n\r\n".encode(),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body,
    )
    hello = client_hello(name)
    # The server's reply: an (unverified) handshake start, then encrypted records.
    records = b"".join(
        b"\x17\x03\x03" + struct.pack(">H", 1400) + bytes(1400)
        for _ in range(object_kb * 1024 // 1400 + 1)
    )
    tls = _tcp_flow(40002, 443, hello, b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00" + records)
    return dns + http + tls


def write(out: Path, flows: int, object_kb: int = 2) -> int:
    tmpl = templates(object_kb)
    count = 0
    with out.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        ts = 1_700_000_000.0
        for i in range(flows):
            # client 10.<i>.<i>.<i> spread over 16M addresses; ports vary too
            client = struct.pack(">I", 0x0A000000 | (i + 1) & 0xFFFFFF)
            port = struct.pack(">H", 1024 + i % 60000)
            for frame in tmpl:
                f = bytearray(frame)
                if f[26:30] == bytes([10, 0, 0, 1]):  # from the client
                    f[26:30] = client
                    f[34:36] = port
                else:
                    f[30:34] = client
                    f[36:38] = port
                ts += 0.0001
                sec = int(ts)
                fh.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(f), len(f)))
                fh.write(f)
                count += 1
    return count


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--flows", type=int, default=50_000)
    ap.add_argument("--object-kb", type=int, default=2, help="HTTP object / TLS reply size")
    args = ap.parse_args()
    n = write(args.out, args.flows, args.object_kb)
    print(f"{args.out}: {n} packets, {args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
