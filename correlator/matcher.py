"""Matching: observations against the index, content against YARA."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from correlator.alerts import Match, YaraHit
from correlator.index import IndicatorIndex
from correlator.whitelist import Suppressed
from rules.yarapack import YaraPack
from sensors.engine import Content
from sensors.observation import Observation

YARA_TIMEOUT_S = 10


class Matcher:
    def __init__(self, index: IndicatorIndex, yara_pack: YaraPack | None = None) -> None:
        self.index = index
        self.yara_pack = yara_pack
        self.yara_errors = 0
        # Hits dropped by a whitelist (by its source) or outside an if_in, since made.
        self.suppressed = Suppressed()

    def match(self, obs: Observation) -> list[Match]:
        return self.match_many((obs,))

    def match_many(self, observations: Iterable[Observation]) -> list[Match]:
        """Matches of a batch, in the order of its observations.

        Values are grouped by ECS field and each group looked up at once
        (`IndicatorIndex.probe_field`): per value, the index costs a C-level
        dict read, not a Python call."""
        groups: dict[str, tuple[list[str], list[int]]] = {}
        seen: list[Observation] = []
        yara_seen: list[int] = []  # YARA hits made on a sensor: alerts as they stand
        for n, obs in enumerate(observations):
            seen.append(obs)
            if "rule.name" in obs.values:
                yara_seen.append(n)
                continue  # its file's hashes were looked up on the file's own observation
            # Addresses match on the connection record, once per flow (as Zeek's
            # Conn::IN_ORIG/IN_RESP); the flow's other observations repeat them.
            for ecs_field, value in obs.fields() if obs.is_connection else obs.value_fields():
                group = groups.get(ecs_field)
                if group is None:
                    group = groups[ecs_field] = ([], [])
                group[0].append(value)
                group[1].append(n)
        found: list[tuple[int, Match]] = []
        for n in yara_seen:
            found.append((n, yara_match(seen[n])))
        probe, resolve = self.index.probe_field, self.index.resolve
        suppressed = self.suppressed
        for ecs_field, (values, owners) in groups.items():
            for i, hit in probe(ecs_field, values, suppressed):
                n = owners[i]
                found.append((n, Match(seen[n], ecs_field, values[i], indicator=resolve(hit))))
        # One observation's matches stay together: the alert folder counts a sighting once.
        found.sort(key=lambda pair: pair[0])
        return [m for _, m in found]

    def scan(self, content: Content) -> list[Match]:
        pack = self.yara_pack
        if pack is None or not content.data:
            return []
        try:
            obs = content.observation
            externals = {
                "filename": (obs.values.get("file.name") or [""])[0],
                "protocol": obs.protocol or "",
                "source": content.source,
            }
            found: list[Any] = pack.rules.match(
                data=content.data, timeout=YARA_TIMEOUT_S, externals=externals
            )
        except Exception:  # yara.TimeoutError and friends: counted, never fatal
            self.yara_errors += 1
            return []
        sha256 = content.observation.values.get("file.hash.sha256", [""])[0]
        ruleset = f"{pack.name}@{pack.version}"
        return [
            Match(content.observation, "file.hash.sha256", sha256, yara=YaraHit.of(r, ruleset))
            for r in found
        ]


def yara_match(obs: Observation) -> Match:
    """The alert's match for a YARA hit a sensor made with the centre's pack (one rule
    per observation, its metadata beside it: sensors.yarascan)."""
    v = obs.values

    def one(name: str) -> str:
        return v[name][0] if v.get(name) else ""

    hit = YaraHit(
        one("rule.name"),
        one("rule.ruleset"),
        "",
        tuple(v.get("rule.category", ())),
        one("rule.description"),
        one("rule.reference"),
        one("rule.author"),
    )
    return Match(obs, "file.hash.sha256", one("file.hash.sha256"), yara=hit)
