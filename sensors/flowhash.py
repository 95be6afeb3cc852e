"""Community ID v1 for TCP and UDP flows, computed straight from packet bytes.

The `communityid` package (Corelight's reference) stays the oracle — the
tests compare the two on random flows — and still computes ICMP, whose
type/code pairing rules are not worth repeating. Here, for the common case,
it is one SHA-1 over bytes the decoder already has: the reference's
per-call parsing of addresses cost more than decoding the packet itself.
"""

from __future__ import annotations

import binascii
import hashlib
import struct

import communityid

_CID = communityid.CommunityID()
_TAIL = struct.Struct("!BBHH")  # protocol, padding, ports
_SEED = struct.pack("!H", 0)


def community_id(proto: int, src: bytes, dst: bytes, sport: int, dport: int) -> str:
    """The flow's Community ID (seed 0), the same whichever end sent the packet."""
    if proto in (6, 17, 132):  # TCP, UDP, SCTP: ordered endpoints, then one hash
        if src > dst or (src == dst and sport > dport):
            src, dst, sport, dport = dst, src, dport, sport
        digest = hashlib.sha1(
            b"".join((_SEED, src, dst, _TAIL.pack(proto, 0, sport, dport))),
            usedforsecurity=False,
        ).digest()
        return "1:" + binascii.b2a_base64(digest, newline=False).decode()
    try:
        return str(_CID.calc(communityid.FlowTuple(proto, src, dst, sport, dport)))
    except Exception:  # protocols the reference refuses
        return ""
