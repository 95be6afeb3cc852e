"""The Observation record: one thing seen on the wire, shaped like ECS.

What was seen is kept apart from what is known (rules.Indicator) and from the
match (the correlator's alert). Each observed value sits under the ECS field
that says where it was seen (DESIGN.md, "Observation").
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# ECS fields an observation may carry values for. Kept as data: extractors
# and the correlator's index agree on these names.
VALUE_FIELDS = frozenset(
    {
        "dns.question.name",
        "dns.answers.data",
        "url.domain",
        "url.original",
        "user_agent.original",
        "http.request.referrer",
        "network.forwarded_ip",  # X-Forwarded-For: the client behind a proxy
        "tls.client.server_name",
        "tls.client.ja3",
        "tls.client.ja4",
        "tls.server.ja3s",
        "tls.server.hash.sha1",
        "tls.server.x509.subject.common_name",
        "tls.server.x509.alternative_names",
        "file.hash.md5",
        "file.hash.sha1",
        "file.hash.sha256",
        "file.name",
        "file.path",
        "email.from.address",
        "email.to.address",
        "email.cc.address",
    }
)
ADDRESS_FIELDS = ("source.ip", "destination.ip")
TRANSPORTS = frozenset({"tcp", "udp", "icmp", "ipv6-icmp", "other"})


class ObservationError(ValueError):
    """An observation document that does not follow the contract."""


@dataclass(slots=True)
class Observation:
    """One record per thing seen: a new flow, a DNS query, an HTTP request, a TLS hello..."""

    timestamp: float  # seconds since the epoch, from the capture
    observer: str  # sensor id (`observer.name`)
    src_ip: str
    dst_ip: str
    src_port: int | None
    dst_port: int | None
    transport: str
    community_id: str
    protocol: str | None = None  # dns, http, tls... (`network.protocol`)
    values: dict[str, list[str]] = field(default_factory=dict)

    def add(self, ecs_field: str, value: str) -> None:
        seen = self.values.setdefault(ecs_field, [])
        if value not in seen:
            seen.append(value)

    @property
    def is_connection(self) -> bool:
        """The flow's own record (a new connection), not one of its protocol events."""
        return not self.values

    def value_fields(self) -> list[tuple[str, str]]:
        """The (ECS field, value) pairs seen, addresses aside."""
        return [(name, v) for name, vals in self.values.items() for v in vals]

    def fields(self) -> list[tuple[str, str]]:
        """Every (ECS field, value) pair to look up, addresses included."""
        return [("source.ip", self.src_ip), ("destination.ip", self.dst_ip), *self.value_fields()]

    def to_ecs(self) -> dict[str, Any]:
        ts = datetime.fromtimestamp(self.timestamp, UTC)
        doc: dict[str, Any] = {
            "@timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond:06d}Z",
            "observer": {"name": self.observer},
            "source": _endpoint(self.src_ip, self.src_port),
            "destination": _endpoint(self.dst_ip, self.dst_port),
            "network": {"transport": self.transport, "community_id": self.community_id},
        }
        if self.protocol:
            doc["network"]["protocol"] = self.protocol
        for name, vals in self.values.items():
            if name == "dns.answers.data":
                doc.setdefault("dns", {})["answers"] = [{"data": v} for v in vals]
                continue
            _put(doc, name, vals[0] if len(vals) == 1 else list(vals))
        return doc

    @classmethod
    def from_ecs(cls, doc: Any) -> Observation:
        """Validate and read one ECS observation document (as shipped by a sensor)."""
        if not isinstance(doc, dict):
            raise ObservationError("observation must be a JSON object")
        # One pass flattens the document (nested or dotted keys alike); every field
        # is then one dict read: ingest parses every observation it takes.
        flat = _flatten(doc)
        try:
            ts_text = flat["@timestamp"]
            ts = datetime.fromisoformat(str(ts_text).replace("Z", "+00:00"))
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
            observer = str(flat.get("observer.name") or "")
            src, dst = flat.get("source.ip"), flat.get("destination.ip")
            _check_ip(src)
            _check_ip(dst)
        except KeyError as exc:
            raise ObservationError(f"missing field {exc.args[0]}") from None
        except (TypeError, ValueError) as exc:
            raise ObservationError(f"bad timestamp or address: {exc}") from None
        if not observer:
            raise ObservationError("missing field observer.name")
        transport = str(flat.get("network.transport") or "other")
        if transport not in TRANSPORTS:
            raise ObservationError(f"unknown network.transport {transport!r}")
        obs = cls(
            timestamp=ts.timestamp(),
            observer=observer,
            src_ip=str(src),
            dst_ip=str(dst),
            src_port=_port(flat.get("source.port")),
            dst_port=_port(flat.get("destination.port")),
            transport=transport,
            community_id=str(flat.get("network.community_id") or ""),
            protocol=flat.get("network.protocol"),
        )
        answers = flat.get("dns.answers")
        if isinstance(answers, list):
            for a in answers:
                if isinstance(a, dict) and isinstance(a.get("data"), str):
                    obs.add("dns.answers.data", a["data"])
        for name, val in flat.items():  # a fixed order (not a set's): deterministic output
            if name not in VALUE_FIELDS or name == "dns.answers.data":
                continue
            for v in val if isinstance(val, list) else [val]:
                if not isinstance(v, str):
                    raise ObservationError(f"{name} must be a string or a list of strings")
                obs.add(name, v)
        return obs


def _endpoint(ip: str, port: int | None) -> dict[str, Any]:
    return {"ip": ip} if port is None else {"ip": ip, "port": port}


def _port(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or not 0 <= value <= 65535:
        raise ObservationError(f"bad port {value!r}")
    return value


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = doc
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


def _check_ip(value: Any) -> None:
    """An IPv4 or IPv6 address, checked by the C library (ipaddress is slow here)."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an IP address")
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
    except OSError:
        raise ValueError(f"{value!r} is not an IP address") from None


def _flatten(doc: dict[str, Any]) -> dict[str, Any]:
    """{dotted name: value} of each leaf (a value that is not an object), for nested
    and dotted-key documents alike; a dotted key at the top wins over its nesting."""
    flat: dict[str, Any] = {}
    stack: list[tuple[str, dict[str, Any]]] = [("", doc)]
    while stack:
        prefix, node = stack.pop()
        for key, val in node.items():
            if type(val) is dict:
                stack.append((f"{prefix}{key}.", val))
            else:
                flat.setdefault(f"{prefix}{key}", val)
    return flat
