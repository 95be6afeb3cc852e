"""TLS handshakes: the ClientHello (SNI, JA3, JA4), the ServerHello (JA3S) and the
server's certificate chain, as observations (TlsAnalyzer)."""

from __future__ import annotations

import hashlib
import struct
from typing import NamedTuple

from sensors.analyzer import Analyzer, AnalyzerError, Endpoints
from sensors.report import Reporter

MAX_HELLO = 64 * 1024
_GREASE = frozenset((x << 8) | x for x in range(0x0A, 0x100, 0x10))


class TlsError(AnalyzerError):
    pass


class ClientHello(NamedTuple):
    server_name: str | None
    ja3: str  # the JA3 string
    ja3_hash: str  # its MD5: what tls.client.ja3 and MISP's ja3-fingerprint-md5 carry
    ja4: str


def looks_like_tls(data: bytes) -> bool:
    return len(data) >= 3 and data[0] == 0x16 and data[1] == 0x03


def hello_from_stream(data: bytes) -> ClientHello | None:
    """Parse the ClientHello at the start of a client stream; None if incomplete yet."""
    handshake = bytearray()
    pos = 0
    while pos + 5 <= len(data):
        if data[pos] != 0x16:
            raise TlsError("not a handshake record")
        rlen = int.from_bytes(data[pos + 3 : pos + 5])
        if pos + 5 + rlen > len(data):
            break
        handshake += data[pos + 5 : pos + 5 + rlen]
        pos += 5 + rlen
        if len(handshake) >= 4:
            hlen = int.from_bytes(handshake[1:4])
            if handshake[0] != 1:
                raise TlsError("first handshake message is not a ClientHello")
            if len(handshake) >= 4 + hlen:
                return parse_client_hello(bytes(handshake[4 : 4 + hlen]))
    if len(data) > MAX_HELLO:
        raise TlsError("ClientHello too large")
    return None


def _u16(b: bytes, p: int) -> int:
    if p + 2 > len(b):
        raise TlsError("truncated ClientHello")
    return (b[p] << 8) | b[p + 1]  # compiled, two indexings beat a slice and a call


def parse_client_hello(body: bytes) -> ClientHello:
    version = _u16(body, 0)
    pos = 2 + 32
    if pos >= len(body):
        raise TlsError("truncated ClientHello")
    pos += 1 + body[pos]  # session id
    clen = _u16(body, pos)
    ciphers = [_u16(body, pos + 2 + i) for i in range(0, clen, 2)]
    pos += 2 + clen
    if pos >= len(body):
        raise TlsError("truncated ClientHello")
    pos += 1 + body[pos]  # compression methods
    exts: list[int] = []
    groups: list[int] = []
    formats: list[int] = []
    sni = None
    alpn = b""
    versions: list[int] = []
    sigalgs: list[int] = []
    if pos + 2 <= len(body):
        end = min(len(body), pos + 2 + _u16(body, pos))
        pos += 2
        while pos + 4 <= end:
            etype, elen = _u16(body, pos), _u16(body, pos + 2)
            ext = body[pos + 4 : pos + 4 + elen]
            pos += 4 + elen
            exts.append(etype)
            if etype == 0 and len(ext) >= 5 and ext[2] == 0:  # server_name, host_name
                nlen = int.from_bytes(ext[3:5])
                sni = ext[5 : 5 + nlen].decode("ascii", "backslashreplace").lower()
            elif etype == 10 and len(ext) >= 2:  # supported_groups
                groups = [_u16(ext, 2 + i) for i in range(0, int.from_bytes(ext[:2]) - 1, 2)]
            elif etype == 11 and ext:  # ec_point_formats
                formats = list(ext[1 : 1 + ext[0]])
            elif etype == 16 and len(ext) >= 3:  # ALPN: the first protocol named
                alpn = ext[3 : 3 + ext[2]]
            elif etype == 43 and ext:  # supported_versions
                versions = [_u16(ext, 1 + i) for i in range(0, ext[0] - 1, 2)]
            elif etype == 13 and len(ext) >= 2:  # signature_algorithms, in order
                sigalgs = [_u16(ext, 2 + i) for i in range(0, int.from_bytes(ext[:2]) - 1, 2)]

    ja3 = ",".join(
        [str(version), _dashed(ciphers), _dashed(exts), _dashed(groups), _dashed(formats)]
    )
    ja4 = _ja4("t", version, versions, sni is not None, ciphers, exts, alpn, sigalgs)
    return ClientHello(sni, ja3, hashlib.md5(ja3.encode(), usedforsecurity=False).hexdigest(), ja4)


_TWO_DIGITS = [f"{i:02d}" for i in range(100)]  # JA4's counts: a format call less each


def _dashed(vals: list[int]) -> str:
    """JA3's list form: decimal values joined by dashes, GREASE left out."""
    return "-".join([str(v) for v in vals if v not in _GREASE])


def _hex4(vals: list[int]) -> str:
    """JA4's list form: 4-digit hex values joined by commas (one C call for the text)."""
    return struct.pack(f">{len(vals)}H", *vals).hex(",", 2)


_JA4_VERSIONS = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}


def _ja4(
    proto: str,
    version: int,
    versions: list[int],
    has_sni: bool,
    ciphers: list[int],
    exts: list[int],
    alpn: bytes,
    sigalgs: list[int],
) -> str:
    """JA4 (FoxIO's TLS client fingerprint): a_b_c, GREASE ignored throughout.

    a: protocol, highest version, SNI or not, cipher and extension counts, ALPN's
    first and last character; b: the sorted ciphers; c: the sorted extensions
    without SNI and ALPN, then the signature algorithms in their order.
    """
    offered = [v for v in versions if v not in _GREASE]
    ver = _JA4_VERSIONS.get(max(offered) if offered else version, "00")
    ciphers = [c for c in ciphers if c not in _GREASE]
    exts = [e for e in exts if e not in _GREASE]
    if not alpn:
        alpn_tag = "00"
    elif chr(alpn[0]).isalnum() and chr(alpn[-1]).isalnum():
        alpn_tag = chr(alpn[0]) + chr(alpn[-1])
    else:  # not printable: first nibble of the first byte, last nibble of the last
        alpn_tag = f"{alpn[0]:02x}"[0] + f"{alpn[-1]:02x}"[1]
    a = "".join(
        [
            proto,
            ver,
            "d" if has_sni else "i",
            _TWO_DIGITS[min(len(ciphers), 99)],
            _TWO_DIGITS[min(len(exts), 99)],
            alpn_tag,
        ]
    )
    b = _hash12(_hex4(sorted(ciphers))) if ciphers else "0" * 12
    rest = _hex4(sorted([e for e in exts if e not in (0x0000, 0x0010)]))
    sig = _hex4([x for x in sigalgs if x not in _GREASE])
    c = _hash12(f"{rest}_{sig}" if sig else rest) if exts else "0" * 12
    return "_".join([a, b, c])


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class ServerCerts(NamedTuple):
    chain: list[bytes]  # DER, leaf first
    common_name: str | None
    alt_names: list[str]


class ServerHello(NamedTuple):
    ja3s: str  # version,cipher,extensions
    ja3s_hash: str  # its MD5: ECS tls.server.ja3s


def server_hello(data: bytes) -> ServerHello | None:
    """The JA3S of the ServerHello at the start of a server stream; None if absent."""
    if len(data) < 9 or data[0] != 0x16 or data[5] != 2:
        return None
    rlen = int.from_bytes(data[3:5])
    hlen = int.from_bytes(data[6:9])
    body = data[9 : 9 + hlen]
    if hlen > rlen - 4 or len(body) < hlen:
        return None  # a ServerHello split over records: rare, and not worth a reassembly
    version = _u16(body, 0)
    pos = 2 + 32
    if pos >= len(body):
        raise TlsError("truncated ServerHello")
    pos += 1 + body[pos]  # session id
    cipher = _u16(body, pos)
    pos += 3  # cipher, compression
    exts = []
    if pos + 2 <= len(body):
        end = pos + 2 + _u16(body, pos)
        pos += 2
        while pos + 4 <= min(end, len(body)):
            etype = _u16(body, pos)
            if etype not in _GREASE:
                exts.append(etype)
            pos += 4 + _u16(body, pos + 2)
    ja3s = f"{version},{cipher},{'-'.join(map(str, exts))}"
    return ServerHello(ja3s, hashlib.md5(ja3s.encode(), usedforsecurity=False).hexdigest())


def certs_from_stream(data: bytes) -> ServerCerts | bool | None:
    """The server's certificate chain (TLS ≤ 1.2), None if incomplete yet, False if none comes.

    TLS 1.3 encrypts the Certificate message: a ChangeCipherSpec or encrypted
    record before it means there is nothing to read.
    """
    handshake = bytearray()
    pos = 0
    while pos + 5 <= len(data):
        ctype = data[pos]
        rlen = int.from_bytes(data[pos + 3 : pos + 5])
        if ctype != 0x16:
            return False  # ChangeCipherSpec, alert or application data first: no certs to see
        if pos + 5 + rlen > len(data):
            break
        handshake += data[pos + 5 : pos + 5 + rlen]
        pos += 5 + rlen
        hpos = 0
        while hpos + 4 <= len(handshake):
            htype = handshake[hpos]
            hlen = int.from_bytes(handshake[hpos + 1 : hpos + 4])
            if hpos + 4 + hlen > len(handshake):
                break
            if htype == 11:  # Certificate
                return _chain(bytes(handshake[hpos + 4 : hpos + 4 + hlen]))
            if htype in (14, 12, 13):  # ServerHelloDone, key exchange, request: no cert sent
                return False
            hpos += 4 + hlen
    if len(data) > MAX_HELLO * 4:
        raise TlsError("server handshake too large")
    return None


def _chain(body: bytes) -> ServerCerts:
    total = int.from_bytes(body[:3])
    pos, end = 3, min(len(body), 3 + total)
    chain = []
    while pos + 3 <= end:
        n = int.from_bytes(body[pos : pos + 3])
        chain.append(body[pos + 3 : pos + 3 + n])
        pos += 3 + n
    cn, sans = _names(chain[0]) if chain else (None, [])
    return ServerCerts(chain, cn, sans)


def _names(der: bytes) -> tuple[str | None, list[str]]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None, []
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value).lower() if cns else None
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        sans = [n.lower() for n in ext.value.get_values_for_type(x509.DNSName)]
    except (x509.ExtensionNotFound, ValueError):
        sans = []
    return cn, sans


class TlsAnalyzer(Analyzer):
    """The client's hello, then the server's hello and certificates; the rest is
    encrypted: done once both are read."""

    def __init__(self, ends: Endpoints, report: Reporter) -> None:
        self.ends, self.report = ends, report
        self.client_done = False
        self.hello_buf = b""
        self.certs_buf: bytes | None = b""  # None once the server's certificates are read

    def feed(self, from_originator: bool, data: bytes, ts: float) -> bool:
        if from_originator and not self.client_done:
            self.client(data, ts)
        elif not from_originator and self.certs_buf is not None:
            self.server(data, ts)
        return not (self.client_done and self.certs_buf is None)

    def end(self, from_originator: bool, reset: bool, ts: float) -> None:
        pass

    def close(self, ts: float) -> None:
        pass

    def client(self, data: bytes, ts: float) -> None:
        self.hello_buf += data
        hello = hello_from_stream(self.hello_buf)
        if hello is None:
            return
        self.hello_buf = b""
        self.client_done = True
        obs = self.report.obs(self.ends, ts, "tls")
        if hello.server_name:
            obs.add("tls.client.server_name", hello.server_name)
        obs.add("tls.client.ja3", hello.ja3_hash)
        obs.add("tls.client.ja4", hello.ja4)
        self.report.emit(obs)

    def server(self, data: bytes, ts: float) -> None:
        assert self.certs_buf is not None
        self.certs_buf += data
        found = certs_from_stream(self.certs_buf)
        if found is None:
            return
        hello = server_hello(self.certs_buf)
        self.certs_buf = None  # done with this direction, whatever came
        obs = self.report.obs(self.ends, ts, "tls")
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
            self.report.emit(obs)
