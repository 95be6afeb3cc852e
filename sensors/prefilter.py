"""The pre-filter: drop trusted or redundant traffic before it costs anything, counted.

- allowlisted networks: flows with either end inside are not extracted from,
  each of their packets counted (`allowlisted_network`);
- allowlisted domains: observations naming only trusted names are dropped
  (`allowlisted_domain`);
- sampling: keep one flow in N, chosen by a hash of its Community ID, so both
  directions and every sensor agree (`sampled_out`, per packet);
- de-duplication: an observation identical to one already seen in the same
  flow is dropped (`duplicate_in_flow`).
BPF filtering happens in the kernel (see capture.LiveCapture); per-flow
payload depth is the reassembly depth (SensorConfig.stream_depth).
"""

from __future__ import annotations

import hashlib
import ipaddress

from sensors.observation import Observation

_NAME_FIELDS = ("dns.question.name", "url.domain", "tls.client.server_name")


class PreFilter:
    def __init__(
        self, networks: tuple[str, ...] = (), domains: tuple[str, ...] = (), sample_one_in: int = 1
    ) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]
        self.domains = tuple(d.lower().rstrip(".") for d in domains)
        self.sample_one_in = sample_one_in
        self._seen: dict[str, set[tuple[tuple[str, tuple[str, ...]], ...]]] = {}

    def trusted_address(self, ip: str) -> bool:
        if not self.networks:
            return False
        addr = ipaddress.ip_address(ip)
        return any(addr in n for n in self.networks)

    def _trusted_name(self, name: str) -> bool:
        n = name.lower().rstrip(".")
        return any(n == d or n.endswith("." + d) for d in self.domains)

    def skip_flow(self, src_ip: str, dst_ip: str, community_id: str) -> str | None:
        """Why a new flow is not worth extracting from (None: extract)."""
        if self.networks and (self.trusted_address(src_ip) or self.trusted_address(dst_ip)):
            return "allowlisted_network"
        if self.sample_one_in > 1:
            h = int.from_bytes(hashlib.blake2b(community_id.encode(), digest_size=4).digest())
            if h % self.sample_one_in:
                return "sampled_out"
        return None

    def drop_reason(self, obs: Observation) -> str | None:
        """Observation-level filtering: trusted names, repeats within the flow."""
        if self.domains:
            names = [v for f in _NAME_FIELDS for v in obs.values.get(f, ())]
            if names and all(self._trusted_name(n) for n in names):
                return "allowlisted_domain"
        if obs.values:
            key = tuple(sorted([(k, tuple(v)) for k, v in obs.values.items()]))
            seen = self._seen.get(obs.community_id)
            if seen is None:
                self._seen[obs.community_id] = {key}
            elif key in seen:
                return "duplicate_in_flow"
            elif len(seen) < 1024:  # bounded per flow
                seen.add(key)
        return None

    def forget(self, community_id: str) -> None:
        self._seen.pop(community_id, None)
