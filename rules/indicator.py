"""The Indicator record (what is known, and from whom) and its normalisation.

Values are normalised once, at load, so that lookups are plain set
membership: lower-case IDNA names, canonical URLs, CIDR networks, lower-case
hashes.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import idna

from rules.vocab import indicator_types

TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")
_HEX = re.compile(r"^[0-9a-f]+$")
_HASH_LEN = {"md5": 32, "sha1": 40, "sha256": 64}
HASH_KINDS = frozenset(_HASH_LEN)  # the kinds whose values are hex digests


class IndicatorError(ValueError):
    """A value that cannot be an indicator of its type."""


# Not frozen: frozen dataclasses set every field through object.__setattr__, and
# the index builds one of these per hit. Treat instances as values all the same.
@dataclass(slots=True)
class Indicator:
    type: str  # MISP attribute type (ip-dst, domain, hostname, url, md5...)
    value: str  # normalised
    provider: str  # who said so: MISP org, feed name, file name
    to_ids: bool = True  # MISP's flag: usable for detection
    confidence: int = 50  # 0-100
    tlp: str = "clear"  # TLP 2.0, lower case
    event: str = ""  # originating MISP event uuid, feed or file
    threat_level: int = 0  # MISP threat_level_id: 1 high .. 4 undefined; 0 unknown
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    expires: datetime | None = None
    comment: str = ""
    # Zeek intel's policy fields. `whitelist`: the value is known good, and a match
    # on it (of any type, from any source) is suppressed. `if_in`: the Intel::Where
    # locations (Zeek names, rules/vocab/zeek_where.json) where a match counts;
    # empty, anywhere.
    whitelist: bool = False
    if_in: tuple[str, ...] = ()
    # Every other metadata column of the source (Zeek's meta.do_notice, meta.cif_*...)
    # as (name, text) pairs, sorted: a tuple, so the index can intern it with the rest.
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def kind(self) -> str:
        return str(indicator_types()["types"][self.type]["kind"])


def supported_type(misp_type: str) -> bool:
    return misp_type in indicator_types()["types"]


def normalise_tlp(value: str | None) -> str:
    if not value:
        return "clear"
    v = value.strip().lower().removeprefix("tlp:")
    v = indicator_types()["tlp_aliases"].get(v, v)
    if v not in TLP_LEVELS:
        raise IndicatorError(f"unknown TLP {value!r}")
    return str(v)


def normalise(misp_type: str, value: str) -> str:
    """The one form a value is stored and looked up in; IndicatorError if invalid."""
    types = indicator_types()["types"]
    if misp_type not in types:
        raise IndicatorError(f"unsupported indicator type {misp_type!r}")
    kind = types[misp_type]["kind"]
    v = value.strip()
    if not v:
        raise IndicatorError("empty value")
    if kind == "addr":
        return normalise_addr(v)
    if kind in ("domain", "hostname"):
        return normalise_domain(v)
    if kind == "url":
        return canonical_url(v)
    if kind in _HASH_LEN:
        v = v.lower()
        if len(v) != _HASH_LEN[kind] or not _HEX.match(v):
            raise IndicatorError(f"not a {kind} hash: {value!r}")
        return v
    if kind == "email":
        v = v.lower()
        local, at, domain = v.rpartition("@")
        if not at or not local or not domain:
            raise IndicatorError(f"not an e-mail address: {value!r}")
        return f"{local}@{normalise_domain(domain)}"
    return v


def _v4(text: str) -> bytes | None:
    """The four bytes of a dotted-quad IPv4 address, by the C library; None otherwise."""
    if text.count(".") != 3:
        return None
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
    except OSError:
        return None
    return packed


def normalise_addr(value: str) -> str:
    # IPv4, the bulk of any feed, through the C library; ipaddress for the rest.
    addr, slash, plen = value.partition("/")
    packed = _v4(addr)
    if packed is not None:
        if not slash:
            return socket.inet_ntop(socket.AF_INET, packed)
        if plen.isdigit() and int(plen) <= 32:
            bits = int(plen)
            if bits == 32:
                return socket.inet_ntop(socket.AF_INET, packed)
            mask = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
            first = (int.from_bytes(packed, "big") & mask).to_bytes(4, "big")
            return f"{socket.inet_ntop(socket.AF_INET, first)}/{bits}"
    if not slash:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass  # an IPv6 with a zone, a network spelt oddly: the general path decides
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise IndicatorError(f"not an IP address or network: {value!r}") from None
    if net.num_addresses == 1:
        return str(net.network_address)
    return str(net)


def normalise_domain(value: str) -> str:
    v = value.strip().rstrip(".").lower()
    if not v or " " in v or "/" in v:
        raise IndicatorError(f"not a domain name: {value!r}")
    if v.isascii():
        labels = v.split(".")
        if len(v) > 253 or "" in labels or max(map(len, labels)) > 63:  # C-level checks
            raise IndicatorError(f"not a domain name: {value!r}")
        return v
    try:
        return idna.encode(v, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise IndicatorError(f"not a domain name: {value!r}") from None


def canonical_url(value: str) -> str:
    """host[:port]/path?query, lower-case IDNA host, no scheme, default port or fragment.

    Without the scheme an http and an https indicator for the same place both
    match, as Zeek's Intel::URL does.
    """
    v = value.strip()
    fast = _plain_url(v)
    if fast is not None:
        return fast
    if "://" not in v:
        v = "http://" + v
    try:
        parts = urlsplit(v)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        raise IndicatorError(f"not a URL: {value!r}") from None
    if not host:
        raise IndicatorError(f"not a URL: {value!r}")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    elif _v4(host) is None:  # no colon: a dotted quad or a name
        host = normalise_domain(host)
    scheme = parts.scheme.lower()
    if port and not (port == 80 and scheme == "http") and not (port == 443 and scheme == "https"):
        host = f"{host}:{port}"
    path = parts.path or "/"
    return f"{host}{path}" + (f"?{parts.query}" if parts.query else "")


def _plain_url(v: str) -> str | None:
    """canonical_url() of the usual feed URL (`http://name/path?query`, printable ASCII, no
    port, user, fragment or IPv6) without urlsplit, which costs more than the rest of a
    million-line import's URLs together; None for anything else (the general path)."""
    if v.startswith("http://"):
        rest = v[7:]
    elif v.startswith("https://"):
        rest = v[8:]
    else:
        return None
    if not (v.isascii() and v.isprintable()) or " " in v or "#" in v or "\\" in v:
        return None
    host, _, path = rest.partition("/")
    if not host or v.endswith("?") or any(c in host for c in ":@[]?"):
        return None
    if _v4(host) is None:
        host = normalise_domain(host)
    return f"{host}/{path}"


def _is_ip(text: str) -> bool:
    if _v4(text) is not None:
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
