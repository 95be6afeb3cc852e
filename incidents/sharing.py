"""What leaves the CERT and to whom, by TLP 2.0: the policy kept as data
(incidents/vocab/sharing.json), read by the TAXII server and the MISP push."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rules.indicator import TLP_LEVELS

VOCAB = Path(__file__).parent / "vocab" / "sharing.json"
NEVER = "red"  # TLP:RED never leaves, whatever the data says


@dataclass(frozen=True)
class Audience:
    name: str  # entities | peers | entity
    title: str
    tlps: tuple[str, ...]
    sources: tuple[str, ...]  # indicators (stored) | incidents (their observables)


@dataclass(frozen=True)
class MispDistribution:
    distribution: int  # MISP: 0 org, 1 community, 2 connected, 3 all, 4 sharing group
    sharing_group: str | None = None  # its name on the CERT's MISP
    fallback: int = 0  # when that key names no group on this centre


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VOCAB.read_text())
    return data


@cache
def audiences() -> dict[str, Audience]:
    out = {}
    for name, a in _data()["taxii"].items():
        tlps = tuple(t for t in TLP_LEVELS if t in a["tlps"] and t != NEVER)
        out[name] = Audience(name, a["title"], tlps, tuple(a["sources"]))
    return out


def unshared_resolutions() -> tuple[str, ...]:
    return tuple(_data()["unshared_resolutions"])


def misp_distribution(tlp: str) -> MispDistribution | None:
    """How a TLP goes out to MISP; None: it does not (TLP:RED, or a level not listed)."""
    d = _data()["misp"].get(tlp)
    if tlp == NEVER or d is None:
        return None
    return MispDistribution(
        int(d["distribution"]), d.get("sharing_group"), int(d.get("fallback_distribution", 0))
    )


def stricter(a: str, b: str) -> str:
    """The stricter of two TLP levels (an observable is no freer than its incident)."""
    return a if TLP_LEVELS.index(a) >= TLP_LEVELS.index(b) else b


def no_stricter_than(tlp: str) -> tuple[str, ...]:
    return TLP_LEVELS[: TLP_LEVELS.index(tlp) + 1]
