"""Matches become ECS alerts with deterministic ids, folded within a window.

`event.id` hashes what makes a match the same match (sensor, both ends, the
field and value seen, the indicator or rule) plus the dedup window it falls
in: replicas and retries compute the same id, so storing is an upsert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from rules.indicator import TLP_LEVELS, Indicator
from rules.vocab import indicator_types
from sensors.observation import Observation

INDICATOR_MATCH = "indicator_match"
YARA_MATCH = "yara_match"
_ECS_CONFIDENCE = ((75, "High"), (50, "Medium"), (1, "Low"), (0, "None"))


@dataclass(frozen=True, slots=True)
class YaraHit:
    rule: str
    ruleset: str  # pack name and version
    namespace: str
    tags: tuple[str, ...] = ()
    description: str = ""  # from the rule's meta, when it has one
    reference: str = ""
    author: str = ""

    @classmethod
    def of(cls, found: Any, ruleset: str) -> YaraHit:
        """From a yara-python match (its meta values may be any scalar)."""
        meta = found.meta or {}
        return cls(
            found.rule,
            ruleset,
            found.namespace,
            tuple(found.tags),
            str(meta.get("description", "")),
            str(meta.get("reference", "")),
            str(meta.get("author", "")),
        )


@dataclass(frozen=True, slots=True)
class EntityRef:
    """The affected entity, when the constituency knows the address or name."""

    id: str
    name: str


@dataclass(slots=True)
class Match:
    """One hit: an observation, where in it, and what it matched."""

    observation: Observation
    field: str  # ECS field the value was seen in
    atomic: str  # the value seen
    indicator: Indicator | None = None
    yara: YaraHit | None = None

    @property
    def matched_type(self) -> str:
        return YARA_MATCH if self.yara else INDICATOR_MATCH


def _window_start(ts: float, window_s: int) -> int:
    return int(ts // window_s) * window_s


def event_id(m: Match, window_s: int) -> str:
    o = m.observation
    # The provider is not part of the key: the same value from several sources
    # is one alert with one enrichment per source (ECS threat.enrichments[]).
    what: list[Any] = (
        [m.indicator.type, m.indicator.value]
        if m.indicator
        else [m.yara.ruleset if m.yara else "", m.yara.rule if m.yara else ""]
    )
    key = [
        o.observer,
        o.src_ip,
        o.dst_ip,
        m.field,
        m.atomic,
        m.matched_type,
        *what,
        _window_start(o.timestamp, window_s),
    ]
    return hashlib.sha256(orjson.dumps(key)).hexdigest()[:32]


def _iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def severity(m: Match) -> int:
    """ECS event.severity 0-100: the indicator's confidence, raised for a high threat
    level, and moved by where the value was seen (vocabulary `severity_by_field`)."""
    if m.yara:
        return 70
    assert m.indicator is not None
    base = m.indicator.confidence
    if m.indicator.threat_level == 1:
        base = max(base, 80)
    base += int(indicator_types()["severity_by_field"].get(m.field, 0))
    return max(1, min(100, base))


def alert_tlp(alert: dict[str, Any]) -> str:
    """The most restrictive TLP among an alert's enrichments: who may see the alert."""
    levels = [str(e["indicator"]["marking"]["tlp"]).lower() for e in alert["threat"]["enrichments"]]
    return max(levels, key=TLP_LEVELS.index, default="clear")


def _enrichment(m: Match, ind: Indicator | None) -> dict[str, Any]:
    enrichment: dict[str, Any] = {
        "matched": {"atomic": m.atomic, "field": m.field, "type": m.matched_type},
    }
    if ind is not None:
        enrichment["indicator"] = {
            "type": ind.type,
            "value": ind.value,
            "provider": ind.provider,
            "confidence": next(w for floor, w in _ECS_CONFIDENCE if ind.confidence >= floor),
            "marking": {"tlp": ind.tlp.upper()},
        }
        if ind.event:
            enrichment["indicator"]["reference"] = ind.event
    else:
        assert m.yara is not None
        enrichment["indicator"] = {
            "type": "yara",
            "value": m.yara.rule,
            "provider": m.yara.ruleset,
            "confidence": "High",
            "marking": {"tlp": "CLEAR"},
        }
    return enrichment


def build_alert(
    m: Match,
    eid: str,
    count: int,
    first: float,
    last: float,
    entity: EntityRef | None,
    sources: list[Indicator] | None = None,
) -> dict[str, Any]:
    """`sources`: every indicator (one per provider) that matched; default `m.indicator`."""
    o = m.observation
    indicators: list[Indicator | None] = list(sources) if sources else [m.indicator]
    enrichments = [_enrichment(m, ind) for ind in indicators]
    doc: dict[str, Any] = {
        "@timestamp": _iso(first),
        "event": {
            "kind": "alert",
            "id": eid,
            "count": count,
            "category": ["threat"],
            "type": ["indicator"],
            "start": _iso(first),
            "end": _iso(last),
            "severity": max(severity(Match(o, m.field, m.atomic, i, m.yara)) for i in indicators),
            "dataset": "vigia.alerts",
        },
        "observer": {"name": o.observer},
        "source": {"ip": o.src_ip, **({"port": o.src_port} if o.src_port is not None else {})},
        "destination": {"ip": o.dst_ip, **({"port": o.dst_port} if o.dst_port is not None else {})},
        "network": {
            "transport": o.transport,
            "community_id": o.community_id,
            **({"protocol": o.protocol} if o.protocol else {}),
        },
        "threat": {"enrichments": enrichments},
    }
    if m.yara:
        doc["rule"] = {"name": m.yara.rule, "ruleset": m.yara.ruleset}
        for key in ("description", "reference", "author"):
            if getattr(m.yara, key):
                doc["rule"][key] = getattr(m.yara, key)
        if m.yara.tags:
            doc["tags"] = list(m.yara.tags)
    if entity:
        doc["organization"] = {"id": entity.id, "name": entity.name}
    return doc


EntityLookup = Callable[[Observation], EntityRef | None]


class AlertFolder:
    """Folds matches into alerts by event id (the offline scan's dedup window)."""

    def __init__(self, window_s: int, entity_of: EntityLookup | None = None) -> None:
        self.window_s = window_s
        self.entity_of = entity_of
        # id -> [match, count, first, last, {provider: indicator}, last observation counted]
        self._alerts: dict[str, list[Any]] = {}

    def add(self, m: Match) -> str:
        eid = event_id(m, self.window_s)
        held = self._alerts.get(eid)
        ts = m.observation.timestamp
        if held is None:
            held = self._alerts[eid] = [m, 1, ts, ts, {}, m.observation]
        elif held[5] is not m.observation:  # a new sighting, not another source for the same one
            held[1] += 1
            held[2], held[3] = min(held[2], ts), max(held[3], ts)
            held[5] = m.observation
        if m.indicator is not None:
            held[4].setdefault(m.indicator.provider, m.indicator)
        return eid

    def __len__(self) -> int:
        return len(self._alerts)

    def alerts(self) -> list[dict[str, Any]]:
        out = []
        for eid, (m, count, first, last, sources, _seen) in self._alerts.items():
            entity = self.entity_of(m.observation) if self.entity_of else None
            ordered = [sources[p] for p in sorted(sources)]
            out.append(build_alert(m, eid, count, first, last, entity, ordered))
        out.sort(key=lambda a: (a["@timestamp"], a["event"]["id"]))
        return out
