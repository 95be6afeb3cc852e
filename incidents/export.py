"""An incident out to peers: a MISP event (pymisp) and a STIX 2.1 bundle (stix2).

Both carry the incident's TLP and PAP and its RSIT class, its observables as
attributes / indicators, and its alerts as network connections (MISP objects)."""

from __future__ import annotations

import ipaddress
import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from incidents.models import IncidentObservableRow, IncidentRow
from incidents.service import alerts_of

if TYPE_CHECKING:
    import stix2

# stix2 and pymisp are imported where an export is built, not with this module: together
# they cost every start of the centre (which imports the routes) over half a second.

# Stable ids: the same incident of the same CERT exports with the same UUIDs.
_NS = uuid.UUID("6f1d1f8e-6c55-4a8e-9e51-8b9f3a1c0d2e")
_THREAT_LEVEL = {"P1": 1, "P2": 1, "P3": 2, "P4": 3}  # MISP: 1 high, 2 medium, 3 low
_ANALYSIS = {"new": 0, "triaged": 0, "in_progress": 1, "contained": 1, "resolved": 2, "closed": 2}
_TLP2 = {  # STIX marking definitions of the TLP 2.0 extension
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
_TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
_STIX_PATTERN = {
    "ip-src": "ipv{v}-addr:value",
    "ip-dst": "ipv{v}-addr:value",
    "domain": "domain-name:value",
    "hostname": "domain-name:value",
    "url": "url:value",
    "md5": "file:hashes.MD5",
    "sha1": "file:hashes.'SHA-1'",
    "sha256": "file:hashes.'SHA-256'",
    "x509-fingerprint-sha1": "x509-certificate:hashes.'SHA-1'",
    "email": "email-addr:value",
    "email-src": "email-message:from_ref.value",
    "email-dst": "email-message:to_refs[*].value",
    "filename": "file:name",
}


def _marking(tlp: str) -> stix2.MarkingDefinition:
    import stix2

    return stix2.MarkingDefinition(
        id=_TLP2[tlp],
        created="2022-10-01T00:00:00.000Z",
        name=f"TLP:{tlp.upper()}",
        extensions={_TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": tlp}},
    )


def _uuid(cert: str, *parts: object) -> str:
    return str(uuid.uuid5(_NS, "/".join([cert, *map(str, parts)])))


def marking(tlp: str) -> stix2.MarkingDefinition:
    """The TLP 2.0 marking definition of a level (its id is fixed by the extension)."""
    return _marking(tlp)


def marking_id(tlp: str) -> str:
    return _TLP2[tlp]


def cert_identity(cert: str) -> stix2.Identity:
    """The CERT as the STIX identity every shared object is created by."""
    import stix2

    return stix2.Identity(
        id=f"identity--{_uuid(cert, 'identity')}", name=cert, identity_class="organization"
    )


def observable_id(cert: str, incident_id: int, type_: str, value: str) -> str:
    """The STIX id of an incident's observable, the same in the bundle and over TAXII."""
    return f"indicator--{_uuid(cert, 'observable', incident_id, type_, value)}"


def indicator_id(cert: str, type_: str, value: str, provider: str) -> str:
    """The STIX id of a stored indicator (one per type, value and provider)."""
    return f"indicator--{_uuid(cert, 'indicator', type_, value, provider)}"


def patternable_types() -> tuple[str, ...]:
    """The MISP types a STIX pattern can express (others are not shared as STIX)."""
    return tuple(_STIX_PATTERN)


def indicator_object(
    stix_id: str,
    type_: str,
    value: str,
    marking_ref: str,
    *,
    created: datetime,
    modified: datetime,
    valid_from: datetime,
    created_by_ref: str,
    valid_until: datetime | None = None,
    confidence: int | None = None,
) -> stix2.Indicator | None:
    """One STIX 2.1 indicator for a MISP-typed value, checked by stix2 (its pattern
    parsed); None when no pattern can say it."""
    d = indicator_dict(
        stix_id,
        type_,
        value,
        marking_ref,
        created=created,
        modified=modified,
        valid_from=valid_from,
        created_by_ref=created_by_ref,
        valid_until=valid_until,
        confidence=confidence,
    )
    if d is None:
        return None
    import stix2

    return stix2.Indicator(**d)


def indicator_dict(
    stix_id: str,
    type_: str,
    value: str,
    marking_ref: str,
    *,
    created: datetime,
    modified: datetime,
    valid_from: datetime,
    created_by_ref: str,
    valid_until: datetime | None = None,
    confidence: int | None = None,
) -> dict[str, Any] | None:
    """The same indicator as its STIX JSON, built without stix2's per-object checks
    (a pattern parse costs about a millisecond): what TAXII serves by the thousand."""
    pattern = _pattern(type_, value)
    if pattern is None:
        return None
    out: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": stix_id,
        "created_by_ref": created_by_ref,
        "created": stix_time(min(created, modified)),
        "modified": stix_time(modified),
        "name": f"{type_}: {value}",
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": stix_time(valid_from),
    }
    if valid_until is not None and valid_until > valid_from:
        out["valid_until"] = stix_time(valid_until)
    if confidence is not None:
        out["confidence"] = max(0, min(100, confidence))
    out["object_marking_refs"] = [marking_ref]
    return out


def stix_time(dt: datetime) -> str:
    """A STIX timestamp: UTC, microseconds (at least the milliseconds STIX asks)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _observables(session: Session, inc: IncidentRow) -> list[IncidentObservableRow]:
    q = select(IncidentObservableRow).where(IncidentObservableRow.incident_id == inc.id)
    return list(session.execute(q.order_by(IncidentObservableRow.id)).scalars())


def _tags(inc: IncidentRow) -> list[str]:
    tags = [f"tlp:{inc.tlp}", f"PAP:{inc.pap.upper()}"]
    if inc.rsit_class:
        tags.append(
            f'rsit:{inc.rsit_class}="{inc.rsit_type}"'
            if inc.rsit_type
            else f"rsit:{inc.rsit_class}"
        )
    return tags


def to_misp(session: Session, inc: IncidentRow, cert: str) -> dict[str, Any]:
    from pymisp import MISPAttribute, MISPEvent, MISPObject

    event = MISPEvent()
    event.uuid = _uuid(cert, "incident", inc.id)
    event.info = f"[{cert}] {inc.title}"
    event.date = inc.created_at.date()
    event.distribution = 0  # this organisation only; the sharer widens it in MISP
    event.threat_level_id = _THREAT_LEVEL[inc.priority]
    event.analysis = _ANALYSIS[inc.status]
    for tag in _tags(inc):
        event.add_tag(tag)
    for o in _observables(session, inc):
        attr = event.add_attribute(o.type, o.value, to_ids=o.type not in ("filename",))
        assert isinstance(attr, MISPAttribute)  # one value, one attribute
        attr.uuid = _uuid(cert, "observable", inc.id, o.type, o.value)
        attr.add_tag(f"tlp:{o.tlp}")
    for a in alerts_of(session, inc.id):
        obj = MISPObject("network-connection", standalone=False)
        obj.uuid = _uuid(cert, "alert", a.id)
        obj.first_seen, obj.last_seen = a.timestamp, a.last_seen
        obj.add_attribute("ip-src", a.doc["source"]["ip"])
        obj.add_attribute("ip-dst", a.doc["destination"]["ip"])
        for end in ("source", "destination"):
            if "port" in a.doc[end]:
                obj.add_attribute(f"{'src' if end == 'source' else 'dst'}-port", a.doc[end]["port"])
        net = a.doc.get("network", {})
        if net.get("community_id"):
            obj.add_attribute("community-id", net["community_id"])
        if net.get("transport"):
            obj.add_attribute("layer4-protocol", net["transport"].upper())
        obj.add_attribute("count", a.count)
        event.add_object(obj)
    out: dict[str, Any] = json.loads(event.to_json())
    return {"Event": out}


def _pattern(type_: str, value: str) -> str | None:
    path = _STIX_PATTERN.get(type_)
    if path is None:
        return None
    if "{v}" in path:
        try:
            path = path.format(v=ipaddress.ip_network(value, strict=False).version)
        except ValueError:
            return None
    if type_ == "url" and "://" not in value:
        # Stored without its scheme (rules.indicator.canonical_url): either matches.
        either = [f"{path} = {_quote(f'{scheme}://{value}')}" for scheme in ("http", "https")]
        return f"[{' OR '.join(either)}]"
    return f"[{path} = {_quote(value)}]"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def to_stix(session: Session, inc: IncidentRow, cert: str) -> dict[str, Any]:
    """A bundle: the CERT's identity, the incident, an indicator per observable that
    STIX patterns can express, each `indicates` the incident, and the TLP 2.0 marking."""
    import stix2

    marking_id = _TLP2[inc.tlp]
    marking = _marking(inc.tlp)
    identity = cert_identity(cert)
    labels = [t.replace('"', "") for t in _tags(inc)]
    incident = stix2.Incident(
        id=f"incident--{_uuid(cert, 'incident', inc.id)}",
        created=inc.created_at,
        modified=max(inc.updated_at, inc.created_at),
        name=inc.title,
        description=inc.summary or inc.title,
        labels=labels,
        created_by_ref=identity.id,
        object_marking_refs=[marking_id],
    )
    objects: list[Any] = [marking, identity, incident]
    for o in _observables(session, inc):
        ind = indicator_object(
            observable_id(cert, inc.id, o.type, o.value),
            o.type,
            o.value,
            _TLP2.get(o.tlp, marking_id),
            created=inc.created_at,
            modified=inc.created_at,
            valid_from=inc.occurred_at or inc.created_at,
            created_by_ref=identity.id,
        )
        if ind is None:
            continue
        rel = stix2.Relationship(
            id=f"relationship--{_uuid(cert, 'indicates', inc.id, o.type, o.value)}",
            created=inc.created_at,
            modified=inc.created_at,
            relationship_type="indicates",
            source_ref=ind.id,
            target_ref=incident.id,
            created_by_ref=identity.id,
            object_marking_refs=[marking_id],
        )
        objects += [ind, rel]
    # Every marking an object points at travels in the bundle.
    for tlp_name, mid in _TLP2.items():
        if mid != marking_id and any(mid in getattr(x, "object_marking_refs", []) for x in objects):
            objects.append(_marking(tlp_name))
    bundle = stix2.Bundle(objects=objects, allow_custom=False)
    out: dict[str, Any] = json.loads(bundle.serialize())
    return out
