"""Fast decoding of raw frames: link layer → IP → TCP/UDP/ICMP, over bytes.

No scapy layers here: dissecting every packet with them runs at a few
thousand packets per second. Addresses stay as bytes; the flow table turns
them into text once per flow.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETH_IPV4, ETH_IPV6, ETH_VLAN, ETH_QINQ, ETH_QINQ_OLD = 0x0800, 0x86DD, 0x8100, 0x88A8, 0x9100
PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMPV6 = 1, 6, 17, 58
# IPv6 extension headers we walk through to reach the transport header.
_IPV6_EXT = frozenset({0, 43, 60, 135, 139, 140})
_IPV6_FRAGMENT = 44

TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10
_TCP = struct.Struct("!HHIIBB")  # ports, seq, ack, data offset, flags
_UDP = struct.Struct("!HHH")  # ports, length


def address_text(addr: bytes) -> str:
    """A 4- or 16-byte address as text: IPv4 by the C library (hot: every new flow,
    every A record); IPv6 by ipaddress, whose compressed form the indicators use too."""
    if len(addr) == 4:
        return socket.inet_ntop(socket.AF_INET, addr)
    return str(ipaddress.ip_address(addr))


class DecodeError(Exception):
    """A frame that cannot be decoded; `reason` is the counter it lands in."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Fragment(DecodeError):
    """One IP fragment: the engine's defragmenter puts the datagram back together."""

    def __init__(
        self,
        src: bytes,
        dst: bytes,
        ident: int,
        proto: int,
        offset: int,
        more: bool,
        payload: bytes,
    ) -> None:
        super().__init__("ip_fragment")
        self.src, self.dst, self.ident, self.proto = src, dst, ident, proto
        self.offset, self.more, self.payload = offset, more, payload


class Packet:
    """One decoded packet. A plain class, not a NamedTuple: compiled (setup.py),
    its fields are read straight from the struct, the engine's hottest reads."""

    __slots__ = ("ack", "dport", "dst", "flags", "payload", "proto", "seq", "sport", "src")

    def __init__(
        self,
        src: bytes,  # 4 or 16 bytes
        dst: bytes,
        proto: int,  # IP protocol number
        sport: int,  # 0 for ICMP (type in `seq`, code in `ack`, as Community ID wants)
        dport: int,
        payload: bytes,
        flags: int,  # TCP flags
        seq: int,
        ack: int,
    ) -> None:
        self.src, self.dst, self.proto = src, dst, proto
        self.sport, self.dport, self.payload = sport, dport, payload
        self.flags, self.seq, self.ack = flags, seq, ack

    def __repr__(self) -> str:
        return (
            f"Packet(proto={self.proto}, {self.src.hex()}:{self.sport} -> "
            f"{self.dst.hex()}:{self.dport}, {len(self.payload)} bytes)"
        )


def decode(linktype: int, frame: bytes) -> Packet | None:
    """Decode one frame. None means "not IP" (ARP, LLDP...); DecodeError means broken."""
    # The common case first, in one piece: Ethernet, IPv4 without options, TCP or
    # UDP, unfragmented. Anything else takes the general path below.
    # Read byte by byte: compiled, an index is a C read, where struct would
    # build a tuple of Python ints.
    size = len(frame)
    if linktype == 1 and size >= 54 and frame[12] == 8 and frame[13] == 0 and frame[14] == 0x45:
        total = (frame[16] << 8) | frame[17]
        if not ((frame[20] & 0x3F) | frame[21]) and total >= 40:  # not a fragment
            end = min(size, 14 + total)
            proto = frame[23]
            if proto == PROTO_TCP:
                doff = (frame[46] >> 4) * 4
                if doff >= 20 and 34 + doff <= end:
                    return Packet(
                        frame[26:30],
                        frame[30:34],
                        6,
                        (frame[34] << 8) | frame[35],
                        (frame[36] << 8) | frame[37],
                        frame[34 + doff : end],
                        frame[47],
                        (frame[38] << 24) | (frame[39] << 16) | (frame[40] << 8) | frame[41],
                        (frame[42] << 24) | (frame[43] << 16) | (frame[44] << 8) | frame[45],
                    )
            elif proto == PROTO_UDP:
                dport = (frame[36] << 8) | frame[37]
                if dport != VXLAN_PORT:
                    ulen = (frame[38] << 8) | frame[39]
                    stop = min(end, 34 + ulen) if ulen >= 8 else end
                    sport = (frame[34] << 8) | frame[35]
                    return Packet(
                        frame[26:30], frame[30:34], 17, sport, dport, frame[42:stop], 0, 0, 0
                    )
    ethertype, off = _link(linktype, frame)
    if ethertype == ETH_IPV4:
        return _ipv4(frame, off)
    if ethertype == ETH_IPV6:
        return _ipv6(frame, off)
    return None


def _link(linktype: int, frame: bytes) -> tuple[int, int]:
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            raise DecodeError("truncated_link")
        ethertype, off = int.from_bytes(frame[12:14]), 14
        while ethertype in (ETH_VLAN, ETH_QINQ, ETH_QINQ_OLD):  # 802.1Q, QinQ
            if len(frame) < off + 4:
                raise DecodeError("truncated_link")
            ethertype, off = int.from_bytes(frame[off + 2 : off + 4]), off + 4
        return ethertype, off
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            raise DecodeError("truncated_link")
        return int.from_bytes(frame[14:16]), 16
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            raise DecodeError("truncated_link")
        return int.from_bytes(frame[0:2]), 20
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, 12, 14):
        if not frame:
            raise DecodeError("truncated_link")
        return (ETH_IPV4 if frame[0] >> 4 == 4 else ETH_IPV6), 0
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(frame) < 5:
            raise DecodeError("truncated_link")
        return (ETH_IPV4 if frame[4] >> 4 == 4 else ETH_IPV6), 4
    raise DecodeError("unsupported_linktype")


def _ipv4(frame: bytes, off: int, depth: int = 0) -> Packet:
    if len(frame) < off + 20:
        raise DecodeError("truncated_ip")
    vihl = frame[off]
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20:
        raise DecodeError("bad_ip_header")
    total = int.from_bytes(frame[off + 2 : off + 4])
    if total < ihl or len(frame) < off + ihl:
        raise DecodeError("bad_ip_length")
    end = min(len(frame), off + total)  # ignore Ethernet padding; tolerate snaplen cuts
    frag = int.from_bytes(frame[off + 6 : off + 8])
    proto = frame[off + 9]
    if frag & 0x3FFF:  # more fragments, or not the first: reassemble first
        raise Fragment(
            frame[off + 12 : off + 16],
            frame[off + 16 : off + 20],
            int.from_bytes(frame[off + 4 : off + 6]),
            proto,
            (frag & 0x1FFF) * 8,
            bool(frag & 0x2000),
            frame[off + ihl : end],
        )
    return _transport(
        proto, frame[off + 12 : off + 16], frame[off + 16 : off + 20], frame, off + ihl, end, depth
    )


def _ipv6(frame: bytes, off: int, depth: int = 0) -> Packet:
    if len(frame) < off + 40:
        raise DecodeError("truncated_ip")
    if frame[off] >> 4 != 6:
        raise DecodeError("bad_ip_header")
    plen = int.from_bytes(frame[off + 4 : off + 6])
    nxt = frame[off + 6]
    src, dst = frame[off + 8 : off + 24], frame[off + 24 : off + 40]
    end = min(len(frame), off + 40 + plen) if plen else len(frame)  # 0: jumbogram
    pos = off + 40
    for _ in range(16):  # bounded walk: hostile chains cannot loop us
        if nxt in _IPV6_EXT:
            if pos + 2 > end:
                raise DecodeError("truncated_ip")
            nxt, pos = frame[pos], pos + (frame[pos + 1] + 1) * 8
        elif nxt == _IPV6_FRAGMENT:
            if pos + 8 > end:
                raise DecodeError("truncated_ip")
            field = int.from_bytes(frame[pos + 2 : pos + 4])
            if field & 0xFFF9:  # an offset or the M flag: a real fragment
                raise Fragment(
                    src,
                    dst,
                    int.from_bytes(frame[pos + 4 : pos + 8]),
                    frame[pos],
                    field & 0xFFF8,
                    bool(field & 1),
                    frame[pos + 8 : end],
                )
            nxt, pos = frame[pos], pos + 8  # an atomic fragment: the datagram is whole
        elif nxt == 51:  # AH: length in 4-byte units
            if pos + 2 > end:
                raise DecodeError("truncated_ip")
            nxt, pos = frame[pos], pos + (frame[pos + 1] + 2) * 4
        else:
            break
    else:
        raise DecodeError("bad_ip_header")
    if pos > end:
        raise DecodeError("truncated_ip")
    return _transport(nxt, src, dst, frame, pos, end, depth)


def transport(proto: int, src: bytes, dst: bytes, datagram: bytes) -> Packet:
    """Decode the transport header of a reassembled datagram."""
    return _transport(proto, src, dst, datagram, 0, len(datagram))


def _transport(
    proto: int, src: bytes, dst: bytes, frame: bytes, pos: int, end: int, depth: int = 0
) -> Packet:
    if proto in _TUNNEL_PROTOS:
        return _tunnel(proto, frame[pos:end], depth)
    if proto == PROTO_TCP:
        if end - pos < 20:
            raise DecodeError("truncated_tcp")
        sport, dport, seq, ack, doff, flags = _TCP.unpack_from(frame, pos)
        doff = (doff >> 4) * 4
        if doff < 20 or pos + doff > end:
            raise DecodeError("bad_tcp_header")
        return Packet(src, dst, proto, sport, dport, frame[pos + doff : end], flags, seq, ack)
    if proto == PROTO_UDP:
        if end - pos < 8:
            raise DecodeError("truncated_udp")
        sport, dport, ulen = _UDP.unpack_from(frame, pos)
        stop = min(end, pos + ulen) if ulen >= 8 else end
        if dport == VXLAN_PORT and stop - pos >= 16 and frame[pos + 8] & 0x08:
            return _inner(ETH_TEB, frame[pos + 16 : stop], depth)  # VXLAN: Ethernet inside
        return Packet(src, dst, proto, sport, dport, frame[pos + 8 : stop], 0, 0, 0)
    if proto in (PROTO_ICMP, PROTO_ICMPV6):
        if end - pos < 2:
            raise DecodeError("truncated_icmp")
        return Packet(src, dst, proto, 0, 0, b"", 0, frame[pos], frame[pos + 1])
    return Packet(src, dst, proto, 0, 0, b"", 0, 0, 0)


# -- tunnels: mirrored traffic often reaches a sensor wrapped (GRE, ERSPAN, VXLAN, IP-in-IP)
PROTO_GRE, PROTO_IPIP, PROTO_IPV6_IN_IP = 47, 4, 41
_TUNNEL_PROTOS = frozenset({PROTO_GRE, PROTO_IPIP, PROTO_IPV6_IN_IP})
ETH_TEB, ETH_ERSPAN2, ETH_ERSPAN3 = 0x6558, 0x88BE, 0x22EB
VXLAN_PORT = 4789
MAX_TUNNEL_DEPTH = 3


def _tunnel(proto: int, payload: bytes, depth: int) -> Packet:
    if proto == PROTO_IPIP:
        return _inner(ETH_IPV4, payload, depth)
    if proto == PROTO_IPV6_IN_IP:
        return _inner(ETH_IPV6, payload, depth)
    if len(payload) < 4:  # GRE
        raise DecodeError("truncated_gre")
    flags, ptype = int.from_bytes(payload[0:2]), int.from_bytes(payload[2:4])
    pos = 4 + 4 * bool(flags & 0x8000) + 4 * bool(flags & 0x2000) + 4 * bool(flags & 0x1000)
    if ptype == ETH_ERSPAN2:
        pos += 8  # ERSPAN type II header, then the mirrored Ethernet frame
    elif ptype == ETH_ERSPAN3:
        pos += 12 + (8 if len(payload) > pos + 11 and payload[pos + 11] & 0x01 else 0)
    if pos > len(payload):
        raise DecodeError("truncated_gre")
    return _inner(ETH_TEB if ptype in (ETH_ERSPAN2, ETH_ERSPAN3) else ptype, payload[pos:], depth)


def _inner(ethertype: int, data: bytes, depth: int) -> Packet:
    if depth >= MAX_TUNNEL_DEPTH:
        raise DecodeError("tunnel_depth")
    off = 0
    if ethertype == ETH_TEB:  # a whole Ethernet frame inside
        ethertype, off = _link(LINKTYPE_ETHERNET, data)
    if ethertype == ETH_IPV4:
        return _ipv4(data, off, depth + 1)
    if ethertype == ETH_IPV6:
        return _ipv6(data, off, depth + 1)
    raise DecodeError("tunnel_payload")
