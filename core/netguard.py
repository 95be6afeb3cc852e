"""Where the centre may send outgoing calls it was told to make (entity webhooks).

An entity names its webhook; without a check, the centre would post signed
payloads wherever it is pointed, its own loopback and internal network included
(SSRF). A target must be https (http only when an admin allows it), and every
address its name resolves to must be public: not loopback, private, link-local,
shared, reserved or multicast, unless an admin's allow-list names its network.
The check runs when the webhook is set and again at each send, on the address
the send then connects to (resolved once, checked, pinned), so a name that
resolves elsewhere between check and use (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetError(ValueError):
    """Why a target is refused, in one line."""


@dataclass(frozen=True)
class Target:
    """A checked target: the URL as given, its host, and the address to connect to."""

    url: str
    host: str
    port: int
    address: str


def _public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class TargetPolicy:
    allow_http: bool = False
    allow_networks: tuple[str, ...] = ()

    def _allowed(self, ip: IPAddress) -> bool:
        return _public(ip) or any(
            ip in ipaddress.ip_network(n, strict=False) for n in self.allow_networks
        )

    def _split(self, url: str) -> tuple[str, int]:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise TargetError(f"the webhook URL is not valid: {exc}") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise TargetError("the webhook must be an https:// URL")
        if parts.scheme == "http" and not self.allow_http:
            raise TargetError("the webhook must be https (http is not allowed here)")
        if parts.username or parts.password:
            raise TargetError("the webhook URL must not carry credentials")
        return parts.hostname, port or (443 if parts.scheme == "https" else 80)

    def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos]

    def _refuse_inner(self, host: str, ips: list[IPAddress]) -> None:
        inner = [str(ip) for ip in ips if not self._allowed(ip)]
        if inner:
            raise TargetError(
                f"the webhook host {host} resolves to a non-public address ({inner[0]}); "
                "an admin may allow its network (VIGIA_WEBHOOK_ALLOW_NETWORKS)"
            )

    def check(self, url: str) -> None:
        """When a webhook is set: the scheme, and the addresses if the name resolves now
        (one that does not resolve yet is left to the check at send time)."""
        host, port = self._split(url)
        try:
            ips = self._addresses(host, port)
        except OSError:
            return
        self._refuse_inner(host, ips)

    def resolve(self, url: str) -> Target:
        """At send time: resolve once, refuse if any address is not allowed, and give
        the address to connect to."""
        host, port = self._split(url)
        try:
            ips = self._addresses(host, port)
        except OSError as exc:
            raise TargetError(f"the webhook host {host} does not resolve: {exc}") from None
        if not ips:
            raise TargetError(f"the webhook host {host} does not resolve")
        self._refuse_inner(host, ips)
        return Target(url, host, port, str(ips[0]))
