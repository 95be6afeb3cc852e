"""The incident vocabulary: lifecycle and NCISS levels (our data), RSIT, PAP and TLP
(MISP's taxonomies as shipped by pytaxonomies), loaded once on first use."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from incidents.errors import IncidentError

VOCAB = Path(__file__).parent / "vocab" / "incidents.json"
# Found, not imported: importing pytaxonomies (jsonschema and all) costs every
# process a quarter of a second of start-up for a folder's name.
_SPEC = find_spec("pytaxonomies")
assert _SPEC is not None and _SPEC.origin is not None, "pytaxonomies is not installed"
_TAXONOMIES = Path(_SPEC.origin).parent / "data" / "misp-taxonomies"


@cache
def vocab() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VOCAB.read_text())
    return data


def _machinetag(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_TAXONOMIES / name / "machinetag.json").read_text())
    return data


@dataclass(frozen=True)
class Rsit:
    """The Reference Security Incident Taxonomy: class → its types."""

    classes: dict[str, tuple[str, ...]]
    names: dict[str, str]  # class or "class/type" → the taxonomy's English name

    def check(self, rsit_class: str | None, rsit_type: str | None) -> None:
        if rsit_class is None:
            if rsit_type is not None:
                raise IncidentError("rsit.type_without_class")
            return
        if rsit_class not in self.classes:
            raise IncidentError(
                "rsit.class_invalid", rsit_class=rsit_class, allowed=", ".join(self.classes)
            )
        if rsit_type is not None and rsit_type not in self.classes[rsit_class]:
            allowed = ", ".join(self.classes[rsit_class])
            raise IncidentError(
                "rsit.type_invalid", rsit_type=rsit_type, rsit_class=rsit_class, allowed=allowed
            )


@cache
def rsit() -> Rsit:
    tag = _machinetag("rsit")
    names = {p["value"]: p.get("expanded", p["value"]) for p in tag["predicates"]}
    classes: dict[str, tuple[str, ...]] = {p["value"]: () for p in tag["predicates"]}
    for block in tag.get("values", []):
        entries = block["entry"]
        classes[block["predicate"]] = tuple(e["value"] for e in entries)
        for e in entries:
            names[f"{block['predicate']}/{e['value']}"] = e.get("expanded", e["value"])
    return Rsit(classes, names)


@cache
def pap_levels() -> tuple[str, ...]:
    """PAP levels, most permissive first (CLEAR, GREEN, AMBER, RED); WHITE is CLEAR's old name."""
    values = [p["value"].lower() for p in _machinetag("PAP")["predicates"]]
    order = ["clear", "green", "amber", "red"]
    return tuple(v for v in order if v in values)


def priority_of(ncciss: int) -> str:
    return str(vocab()["ncciss"][str(ncciss)]["priority"])


def ncciss_from_severity(severity: int) -> int:
    for floor, level in vocab()["ncciss_from_severity"]:
        if severity >= floor:
            return int(level)
    return 1


def label_es(key: str | None) -> str:
    if key is None:
        return ""
    return str(vocab()["labels_es"].get(key, key))
