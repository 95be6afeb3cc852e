"""Deep dissection through tshark (pyshark), where re-implementing a protocol does not pay.

Today: DTLS and QUIC client hellos — server name and JA3 (QUIC's Initial
packets must be decrypted, which tshark does). It runs over capture files,
after the fast pass, and needs tshark installed (`vigia[sensor]` brings
pyshark, the system brings tshark).
"""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sensors.flowhash import community_id
from sensors.observation import Observation

DISPLAY_FILTER = "dtls.handshake.type == 1 or (quic and tls.handshake.type == 1)"


class DeepUnavailable(RuntimeError):
    pass


def available() -> bool:
    return shutil.which("tshark") is not None


def observe(path: Path, observer: str) -> Iterator[Observation]:
    """One observation per DTLS or QUIC ClientHello in the file."""
    if not available():
        raise DeepUnavailable("tshark is not installed: deep dissection is off")
    import pyshark  # loaded on use: the fast path never needs it

    cap = pyshark.FileCapture(str(path), display_filter=DISPLAY_FILTER, keep_packets=False)
    try:
        for pkt in cap:
            obs = _observation(pkt, observer)
            if obs is not None:
                yield obs
    finally:
        cap.close()


def _observation(pkt: Any, observer: str) -> Observation | None:
    ip = getattr(pkt, "ip", None) or getattr(pkt, "ipv6", None)
    udp = getattr(pkt, "udp", None)
    if ip is None or udp is None:
        return None
    layer, protocol = (pkt.dtls, "dtls") if hasattr(pkt, "dtls") else (pkt.tls, "quic")
    ja3 = layer.get_field_value("handshake_ja3")
    sni = layer.get_field_value("handshake_extensions_server_name")
    if not ja3 and not sni:
        return None  # a fragment or retransmission that carries no hello fields
    src, dst = str(ip.src), str(ip.dst)
    sport, dport = int(udp.srcport), int(udp.dstport)
    cid = community_id(
        17, ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed, sport, dport
    )
    obs = Observation(
        timestamp=float(pkt.sniff_timestamp),
        observer=observer,
        src_ip=src,
        dst_ip=dst,
        src_port=sport,
        dst_port=dport,
        transport="udp",
        community_id=cid,
        protocol=protocol,
    )
    if sni:
        obs.add("tls.client.server_name", str(sni).lower())
    if ja3:
        obs.add("tls.client.ja3", str(ja3))
    return obs
