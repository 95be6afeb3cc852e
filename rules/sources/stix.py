"""STIX 2.1 bundles: indicators whose patterns are in the comparison subset.

Supported: `=` comparisons on addresses (and CIDRs), domain names, URLs,
file and certificate hashes and e-mail addresses, joined by OR within and
between observation expressions. A pattern with AND, FOLLOWEDBY, a qualifier
or another object is not an atomic indicator: it is skipped, counted with its
reason. Published bundles carry mistakes (OASIS's own poisonivy example has a
domain-name of "domain autuo.xicp.net"): an indicator whose pattern does not
parse, or whose value is not valid for its type, is skipped and counted too,
and the rest of the bundle loads.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from stix2patterns.v21.pattern import Pattern

from rules.indicator import TLP_LEVELS, Indicator, IndicatorError, normalise, normalise_tlp
from rules.sources import IndicatorFileError, LoadResult

# (object type, property path) -> MISP attribute type
_PATHS: dict[tuple[str, str], str] = {
    ("ipv4-addr", "value"): "ip-dst",
    ("ipv6-addr", "value"): "ip-dst",
    ("domain-name", "value"): "hostname",  # STIX domain-name is the exact name (DESIGN.md)
    ("url", "value"): "url",
    ("file", "hashes.md5"): "md5",
    ("file", "hashes.sha-1"): "sha1",
    ("file", "hashes.sha1"): "sha1",
    ("file", "hashes.sha-256"): "sha256",
    ("file", "hashes.sha256"): "sha256",
    ("x509-certificate", "hashes.sha-1"): "x509-fingerprint-sha1",
    ("email-addr", "value"): "email",
    ("email-message", "from_ref.value"): "email-src",
    ("email-message", "to_refs.*.value"): "email-dst",
    ("email-message", "cc_refs.*.value"): "email-dst",
}
# The TLP marking definitions of STIX 2.1 (TLP 1.0) and of the TLP 2.0 extension.
_TLP_IDS = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "clear",
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "green",
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "amber",
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "amber+strict",
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "red",
}
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")
_COMPOUND = re.compile(r"\b(AND|FOLLOWEDBY)\b")


def load(path: Path, strict: bool = True) -> LoadResult:
    result = LoadResult(str(path), "stix", strict=strict)
    try:
        bundle = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise IndicatorFileError(path, f"invalid JSON: {exc}") from None
    objects = bundle.get("objects") if isinstance(bundle, dict) else None
    if not isinstance(objects, list):
        raise IndicatorFileError(path, "a STIX bundle needs an `objects` list")
    tlp_ids = dict(_TLP_IDS)
    names: dict[str, str] = {}
    for obj in objects:
        if not isinstance(obj, dict):
            raise IndicatorFileError(path, "bundle objects must be JSON objects")
        if obj.get("type") == "marking-definition" and str(obj.get("name", "")).startswith("TLP:"):
            with contextlib.suppress(IndicatorError):  # an unknown TLP name: not a TLP marking
                tlp_ids[obj["id"]] = normalise_tlp(obj["name"])
        elif obj.get("type") == "identity" and "id" in obj:
            names[obj["id"]] = str(obj.get("name", "stix"))
    for obj in objects:
        if obj.get("type") == "indicator":
            _indicator(obj, path, result, tlp_ids, names)
    return result


def _indicator(
    obj: dict[str, Any],
    path: Path,
    result: LoadResult,
    tlp_ids: dict[str, str],
    names: dict[str, str],
) -> None:
    ident = str(obj.get("id", "indicator"))
    if obj.get("pattern_type", "stix") != "stix":
        result.skipped[f"pattern_type {obj.get('pattern_type')}"] += 1
        return
    text = obj.get("pattern")
    if not isinstance(text, str):
        result.reject(IndicatorFileError(path, f"{ident}: no pattern"))
        return
    try:
        data = Pattern(text).inspect()
    except Exception:  # the pattern grammar's own errors
        result.skipped["invalid pattern"] += 1
        return
    if data.qualifiers:
        result.skipped["qualifier (WITHIN, REPEATS, START/STOP)"] += 1
        return
    if _COMPOUND.search(_QUOTED.sub("''", text)):
        result.skipped["AND or FOLLOWEDBY: not an atomic indicator"] += 1
        return
    pairs = []
    for otype, comparisons in data.comparisons.items():
        for prop, op, value in comparisons:
            key = ".".join(p if isinstance(p, str) else "*" for p in prop).lower()
            itype = _PATHS.get((otype, key))
            if itype is None or op != "=" or not value.startswith("'"):
                result.skipped[f"{otype}:{key} {op}"] += 1
                return  # one unsupported comparison: the whole pattern is out
            pairs.append((itype, value[1:-1].replace("\\'", "'").replace("\\\\", "\\")))
    markings = [tlp_ids[m] for m in obj.get("object_marking_refs", []) if m in tlp_ids]
    tlp = max(markings, key=TLP_LEVELS.index, default="clear")
    confidence = obj.get("confidence", 50)
    for itype, value in pairs:
        try:
            normalised = normalise(itype, value)
        except IndicatorError:
            result.skipped[f"invalid {itype} value"] += 1
            continue
        result.indicators.append(
            Indicator(
                type=itype,
                value=normalised,
                provider=names.get(obj.get("created_by_ref", ""), "stix"),
                confidence=confidence if isinstance(confidence, int) else 50,
                tlp=tlp,
                event=ident,
                first_seen=_dt(obj.get("valid_from")),
                expires=_dt(obj.get("valid_until")),
                comment=str(obj.get("name", "")),
            )
        )


def _dt(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
