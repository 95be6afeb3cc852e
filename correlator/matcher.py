"""Matching: observations against the index, content against YARA."""

from __future__ import annotations

from typing import Any

from correlator.alerts import Match, YaraHit
from correlator.index import IndicatorIndex
from rules.yarapack import YaraPack
from sensors.engine import Content
from sensors.observation import Observation

YARA_TIMEOUT_S = 10


class Matcher:
    def __init__(self, index: IndicatorIndex, yara_pack: YaraPack | None = None) -> None:
        self.index = index
        self.yara_pack = yara_pack
        self.yara_errors = 0

    def match(self, obs: Observation) -> list[Match]:
        hits: list[Match] = []
        probe, resolve = self.index.probe, self.index.resolve
        # Addresses match on the connection record, once per flow (as Zeek's
        # Conn::IN_ORIG/IN_RESP); the flow's other observations repeat them.
        pairs = obs.fields() if obs.is_connection else obs.value_fields()
        for ecs_field, value in pairs:
            for hit in probe(ecs_field, value):
                hits.append(Match(obs, ecs_field, value, indicator=resolve(hit)))
        return hits

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
            Match(
                content.observation,
                "file.hash.sha256",
                sha256,
                yara=YaraHit(r.rule, ruleset, r.namespace, tuple(r.tags)),
            )
            for r in found
        ]
