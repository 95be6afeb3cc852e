"""MISP event JSON files and MISP feed folders (manifest.json + one file per event).

The event itself (info, organisation, threat level, tags) is read by pymisp's
MISPEvent; its attributes, which are nearly all of it, are read from the JSON as
MISP documents them (type, value, to_ids, deleted, Tag, first_seen, last_seen),
with pymisp's type defaults: a pymisp object per attribute was three quarters of a
MISP sync's time (bench/misp_sync.py), and its one strict check, a type MISP does
not know, refused the whole event where we skip the one attribute. A bad
attribute is rejected with its position; the event's others load.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pymisp
from pymisp import MISPEvent, PyMISPError
from pymisp.mispevent import make_bool

from rules.indicator import Indicator, IndicatorError, normalise, normalise_tlp
from rules.sources import IndicatorFileError, LoadResult
from rules.vocab import indicator_types

# MISP threat_level_id 1 (high) .. 4 (undefined): a prior for confidence
_CONFIDENCE_BY_THREAT = {1: 90, 2: 70, 3: 50, 4: 30}
# What an event carries besides its own fields: read attribute by attribute, or unused.
_NOT_HEADER = ("Attribute", "Object", "RelatedEvent", "ShadowAttribute", "EventReport")


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


def _load_event(doc: Any, path: Path, result: LoadResult) -> None:
    result.indicators.extend(event_indicators(doc, path, result))


def event_indicators(doc: Any, path: Path, result: LoadResult) -> list[Indicator]:
    """An event's indicators; its YARA rules go to `result.yara_rules`, what is skipped
    or rejected is counted there. IndicatorFileError when the event itself is broken
    (nothing of it counted then)."""
    if isinstance(doc, dict) and isinstance(doc.get("response"), list) and doc["response"]:
        doc = doc["response"][0]  # a search's answer saved whole: its first event, as pymisp
    body = doc.get("Event", doc) if isinstance(doc, dict) else None
    if not isinstance(body, dict):
        raise IndicatorFileError(path, "not a valid MISP event: not a JSON object")
    attributes = body.get("Attribute") or []
    objects = body.get("Object") or []
    if not isinstance(attributes, list) or not isinstance(objects, list):
        raise IndicatorFileError(path, "not a valid MISP event: Attribute and Object are lists")
    event = MISPEvent()
    try:
        event.load({k: v for k, v in body.items() if k not in _NOT_HEADER})
    except Exception as exc:  # pymisp raises many types for a broken event
        raise IndicatorFileError(path, f"not a valid MISP event: {exc}") from None
    threat = int(getattr(event, "threat_level_id", 4) or 4)
    header = Indicator(
        type="",
        value="",
        provider=str(event.Orgc.name if getattr(event, "Orgc", None) else "misp"),
        confidence=_CONFIDENCE_BY_THREAT.get(threat, 50),
        tlp=_tlp([t.name for t in event.tags], "clear"),
        event=str(event.uuid),
        threat_level=threat,
    )
    out: list[Indicator] = []
    for n, attr in enumerate(_attributes(attributes, objects, path, result), start=1):
        if not isinstance(attr, dict):
            result.reject(IndicatorFileError(path, f"attribute {n}: not a JSON object"))
            continue
        try:
            _read_attribute(attr, header, out, result)
        except (IndicatorError, PyMISPError) as exc:
            uuid = attr.get("uuid", "")
            result.reject(IndicatorFileError(path, f"attribute {n} ({uuid}): {exc}"))
    return out


def _attributes(
    attributes: list[Any], objects: list[Any], path: Path, result: LoadResult
) -> Iterator[Any]:
    yield from attributes
    for n, obj in enumerate(objects, start=1):
        if not isinstance(obj, dict):
            yield obj  # rejected by the caller, numbered
            continue
        try:
            deleted = make_bool(obj.get("deleted", False))
        except PyMISPError as exc:  # a flag that is no flag: the object, not the event
            result.reject(IndicatorFileError(path, f"object {n}: {exc}"))
            continue
        if deleted:  # a deleted object's attributes are deleted too
            result.skipped["deleted"] += len(obj.get("Attribute") or [])
        else:
            yield from obj.get("Attribute") or []


def _read_attribute(
    attr: dict[str, Any], header: Indicator, out: list[Indicator], result: LoadResult
) -> None:
    kind, value = attr.get("type"), attr.get("value")
    if not isinstance(kind, str) or not kind or value is None:
        raise IndicatorError("an attribute needs a type and a value")
    deleted = attr.get("deleted")
    if deleted and make_bool(deleted):
        result.skipped["deleted"] += 1
        return
    raw = attr.get("to_ids")
    to_ids = raw if raw is True or raw is False else _to_ids(kind, raw)
    if kind == "yara":  # a rule, not a value: it joins the scan's YARA pack
        if to_ids:
            result.yara_rules[f"misp-{attr.get('uuid', '')}"] = str(value)
        return
    types = indicator_types()["types"]
    if kind in types:  # the usual attribute: one value of a type we match
        parts = [(kind, str(value))]
    else:
        parts = _split(kind, str(value))
        for itype, _ in parts:
            if itype not in types:
                result.skipped[f"type {itype}"] += 1
        parts = [(itype, text) for itype, text in parts if itype in types]
        if not parts:
            return
    tags = attr.get("Tag")
    tlp = (
        _tlp([t if isinstance(t, str) else t.get("name", "") for t in tags], header.tlp)
        if tags
        else header.tlp
    )
    first_seen, last_seen = attr.get("first_seen"), attr.get("last_seen")
    if first_seen or last_seen:
        first_seen, last_seen = _when(first_seen), _when(last_seen)
    else:
        first_seen = last_seen = None  # unsaid, or MISP's "" / null
    comment = str(attr.get("comment") or "")
    for itype, text in parts:
        # Positionally (Indicator's field order): keywords cost ~15 % of the read here.
        out.append(
            Indicator(
                itype, normalise(itype, text), header.provider, to_ids, header.confidence,
                tlp, header.event, header.threat_level, first_seen, last_seen, None, comment,
            )
        )  # fmt: skip


def _tlp(tags: list[str], default: str) -> str:
    for name in tags:
        if isinstance(name, str) and name.lower().startswith("tlp:"):
            try:
                return normalise_tlp(name)
            except IndicatorError:
                continue
    return default


def _split(misp_type: str, value: str) -> list[tuple[str, str]]:
    """Composite attributes (domain|ip, filename|md5...) become their matchable parts."""
    composite = indicator_types()["composite"]
    if misp_type not in composite:
        return [(misp_type, value)]
    parts = value.split("|")
    return [(t, v) for t, v in zip(composite[misp_type], parts, strict=False) if t]


def _when(value: Any) -> datetime | None:
    """first_seen / last_seen as MISP writes them (ISO 8601), as pymisp reads them."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise IndicatorError(f"not a date: {value!r}") from None


@lru_cache(maxsize=1)
def _sane_defaults() -> dict[str, Any]:
    """MISP's own type table, as pymisp ships it: the to_ids a type has when unsaid."""
    path = Path(pymisp.__file__).parent / "data" / "describeTypes.json"
    return dict(json.loads(path.read_text())["result"]["sane_defaults"])


def _to_ids(kind: str, raw: Any) -> bool:
    """MISP's to_ids as given ("1", 0...), or the type's default when unsaid."""
    if raw is not None:
        return make_bool(raw)
    return bool(int(_sane_defaults().get(kind, {}).get("to_ids", 0)))
