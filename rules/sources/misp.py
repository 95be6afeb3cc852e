"""MISP event JSON files and MISP feed folders (manifest.json + one file per event)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pymisp import MISPAttribute, MISPEvent

from rules.indicator import Indicator, IndicatorError, normalise, normalise_tlp, supported_type
from rules.sources import IndicatorFileError, LoadResult
from rules.vocab import indicator_types

# MISP threat_level_id 1 (high) .. 4 (undefined): a prior for confidence
_CONFIDENCE_BY_THREAT = {1: 90, 2: 70, 3: 50, 4: 30}


def load_event_file(path: Path, strict: bool = True) -> LoadResult:
    result = LoadResult(str(path), "misp-event", strict=strict)
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise IndicatorFileError(path, f"invalid JSON: {exc}") from None
    _load_event(doc, path, result)
    return result


def load_feed(folder: Path, strict: bool = True) -> LoadResult:
    result = LoadResult(str(folder), "misp-feed", strict=strict)
    manifest_path = folder / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise IndicatorFileError(manifest_path, f"invalid manifest: {exc}") from None
    if not isinstance(manifest, dict):
        raise IndicatorFileError(manifest_path, "manifest must map event uuids to summaries")
    for event_uuid in manifest:
        event_path = folder / f"{event_uuid}.json"
        try:
            doc = json.loads(event_path.read_bytes())
        except OSError:
            result.reject(IndicatorFileError(event_path, "listed in manifest.json but missing"))
            continue
        except ValueError as exc:
            result.reject(IndicatorFileError(event_path, f"invalid JSON: {exc}"))
            continue
        try:
            _load_event(doc, event_path, result)
        except IndicatorFileError as exc:  # a broken event: the feed's other events still load
            result.reject(exc)
    return result


def load_event_doc(doc: Any, where: Path, result: LoadResult) -> None:
    """One event document (as a file holds it or a MISP server returns it) into `result`."""
    _load_event(doc, where, result)


def _tlp(tags: list[Any], default: str) -> str:
    for tag in tags:
        name = getattr(tag, "name", "") or ""
        if name.lower().startswith("tlp:"):
            try:
                return normalise_tlp(name)
            except IndicatorError:
                continue
    return default


def _load_event(doc: Any, path: Path, result: LoadResult) -> None:
    event = MISPEvent()
    try:
        event.load(doc)
    except Exception as exc:  # pymisp raises many types for a broken event
        raise IndicatorFileError(path, f"not a valid MISP event: {exc}") from None
    provider = event.Orgc.name if getattr(event, "Orgc", None) else "misp"
    threat = int(getattr(event, "threat_level_id", 4) or 4)
    event_tlp = _tlp(list(event.tags), "clear")
    attributes: list[MISPAttribute] = list(event.attributes)
    for obj in event.objects:
        attributes.extend(obj.attributes)
    for n, attr in enumerate(attributes, start=1):
        if getattr(attr, "deleted", False):
            result.skipped["deleted"] += 1
            continue
        if attr.type == "yara":  # a rule, not a value: it joins the scan's YARA pack
            if attr.to_ids:
                result.yara_rules[f"misp-{attr.uuid}"] = str(attr.value)
            continue
        for itype, value in _split(attr.type, str(attr.value)):
            if not supported_type(itype):
                result.skipped[f"type {itype}"] += 1
                continue
            try:
                normalised = normalise(itype, value)
            except IndicatorError as exc:
                result.reject(IndicatorFileError(path, f"attribute {n} ({attr.uuid}): {exc}"))
                continue
            result.indicators.append(
                Indicator(
                    type=itype,
                    value=normalised,
                    provider=str(provider),
                    to_ids=bool(attr.to_ids),
                    confidence=_CONFIDENCE_BY_THREAT.get(threat, 50),
                    tlp=_tlp(list(attr.tags), event_tlp),
                    event=str(event.uuid),
                    threat_level=threat,
                    first_seen=_dt(getattr(attr, "first_seen", None)),
                    last_seen=_dt(getattr(attr, "last_seen", None)),
                    comment=str(getattr(attr, "comment", "") or ""),
                )
            )


def _split(misp_type: str, value: str) -> list[tuple[str, str]]:
    """Composite attributes (domain|ip, filename|md5...) become their matchable parts."""
    composite = indicator_types()["composite"]
    if misp_type not in composite:
        return [(misp_type, value)]
    parts = value.split("|")
    return [(t, v) for t, v in zip(composite[misp_type], parts, strict=False) if t]


def _dt(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None
