"""TAXII 2.1 collections of the CERT: which a caller may read, and their pages.

A collection is one audience (all entities, one entity, peer CERTs) and one TLP
level (incidents.sharing says which). It holds the stored indicators (feeds,
MISP: active, for detection, not whitelisted) and the observables of incidents,
as STIX 2.1 indicators built by incidents.export. Pages follow a keyset, the
(date added, source, id) of the last object served, each source read in SQL in
that order from its index: a page costs the same at the millionth object as at
the first, and nothing is loaded whole.
"""

from __future__ import annotations

import base64
import heapq
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, exists, literal, or_, select, tuple_
from sqlalchemy.orm import Session

from core.db import UtcDateTime
from correlator.rows import IndicatorRow
from incidents import export
from incidents.models import IncidentEntityRow, IncidentObservableRow, IncidentRow
from incidents.sharing import Audience, audiences, no_stricter_than, unshared_resolutions
from rules.vocab import indicator_types

_NS = uuid.UUID("0b7c1f3e-5d0e-4c52-9c39-2f0b1d6e7a41")
# The CERT's identity and the TLP markings: served first in every collection,
# dated as the TLP 2.0 marking definitions are.
STATIC_ADDED = datetime(2022, 10, 1, tzinfo=UTC)
STATIC, INDICATORS, INCIDENTS = 0, 1, 2  # the source, second part of the keyset
MAX_LIMIT = 1000


class TaxiiError(ValueError):
    """A request TAXII answers with an error message (400)."""


@dataclass(frozen=True)
class Collection:
    id: str
    alias: str
    title: str
    description: str
    audience: Audience
    tlp: str
    entity_id: str | None = None


@dataclass(frozen=True)
class Reader:
    """Who reads: the CERT's staff (every collection), one entity, or a peer CERT."""

    staff: bool = False
    entity_id: str | None = None
    peer: bool = False


@dataclass(frozen=True)
class Key:
    added: datetime
    source: int
    rid: int

    def encode(self) -> str:
        text = json.dumps([self.added.isoformat(), self.source, self.rid])
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @staticmethod
    def decode(token: str) -> Key:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            added, source, rid = json.loads(raw)
            key = Key(_aware(datetime.fromisoformat(added)).astimezone(UTC), int(source), int(rid))
        except (ValueError, TypeError, UnicodeDecodeError, OverflowError):
            key = None
        if (
            key is None
            or key.source not in (STATIC, INDICATORS, INCIDENTS)
            or not 0 <= key.rid < 2**63
        ):
            raise TaxiiError("next: not a token this server gave")
        return key


@dataclass(frozen=True)
class Entry:
    key: Key
    stix_id: str
    obj: dict[str, Any]


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    more: bool
    next: str | None


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _collection(audience: Audience, tlp: str, entity_id: str | None) -> Collection:
    scope = audience.name if entity_id is None else f"entity-{entity_id}"
    where = audience.title if entity_id is None else f"{audience.title} {entity_id}"
    return Collection(
        id=str(uuid.uuid5(_NS, f"{scope}/{tlp}")),
        alias=f"{scope}-{tlp}".replace("+", "-"),
        title=f"{where} — TLP:{tlp.upper()}",
        description=f"Indicadores TLP:{tlp.upper()} para: {where}",
        audience=audience,
        tlp=tlp,
        entity_id=entity_id,
    )


def collections(reader: Reader, entity_ids: Iterable[str] = ()) -> list[Collection]:
    """The collections this reader may list and read (staff: every entity's, of
    `entity_ids`)."""
    aud = audiences()
    out: list[Collection] = []
    if reader.staff or reader.entity_id:
        out += [_collection(aud["entities"], t, None) for t in aud["entities"].tlps]
    if reader.staff or reader.peer:
        out += [_collection(aud["peers"], t, None) for t in aud["peers"].tlps]
    scoped = sorted(entity_ids) if reader.staff else [reader.entity_id] if reader.entity_id else []
    for eid in scoped:
        out += [_collection(aud["entity"], t, eid) for t in aud["entity"].tlps]
    return out


def find(reader: Reader, collection_id: str, entity_ids: Iterable[str] = ()) -> Collection | None:
    return next((c for c in collections(reader, entity_ids) if c.id == collection_id), None)


# -- pages ------------------------------------------------------------------------


def _after(added: Any, rid: Any, source: int, cursor: Key | None) -> Any:
    """This source's part of `(added, source, id) > cursor`."""
    if cursor is None:
        return literal(True)
    at = literal(cursor.added, UtcDateTime())
    if source > cursor.source:
        return added >= at
    if source < cursor.source:
        return added > at
    return tuple_(added, rid) > tuple_(at, literal(cursor.rid))


def _indicator_rows(
    c: Collection, cursor: Key | None, added_after: datetime | None, now: datetime, n: int
) -> Select[IndicatorRow]:
    r = IndicatorRow
    q = select(r).where(
        r.tlp == c.tlp,
        r.to_ids.is_(True),
        r.whitelist.is_(False),
        # Left out as a NOT IN, a filter: an IN list would lure the planner to the
        # (type, value, provider) index and a sort of every row after the cursor.
        r.type.not_in(_unpatternable()),
        or_(r.expires.is_(None), r.expires > now),
        _after(r.loaded_at, r.id, INDICATORS, cursor),
    )
    if added_after is not None:
        q = q.where(r.loaded_at > added_after)
    return q.order_by(r.loaded_at, r.id).limit(n)


def _unpatternable() -> tuple[str, ...]:
    return tuple(sorted(set(indicator_types()["types"]) - set(export.patternable_types())))


def _observable_rows(
    c: Collection, cursor: Key | None, added_after: datetime | None, n: int
) -> Select[IncidentObservableRow, IncidentRow]:
    o, i = IncidentObservableRow, IncidentRow
    freer = no_stricter_than(c.tlp)
    q = (
        select(o, i)
        .join(i, i.id == o.incident_id)
        .where(
            # Its TLP is the stricter of its own and its incident's.
            or_(
                and_(o.tlp == c.tlp, i.tlp.in_(freer)),
                and_(i.tlp == c.tlp, o.tlp.in_(freer)),
            ),
            i.merged_into.is_(None),
            or_(i.resolution.is_(None), i.resolution.not_in(unshared_resolutions())),
            o.type.not_in(_unpatternable()),
            _after(o.added_at, o.id, INCIDENTS, cursor),
        )
    )
    if c.entity_id is not None:
        concerned = exists().where(
            IncidentEntityRow.incident_id == o.incident_id,
            IncidentEntityRow.entity_id == c.entity_id,
        )
        q = q.where(concerned)
    if added_after is not None:
        q = q.where(o.added_at > added_after)
    return q.order_by(o.added_at, o.id).limit(n)


def _statics(c: Collection, cert: str) -> list[Entry]:
    identity = export.cert_identity(cert)
    objs: list[Any] = [identity, export.marking(c.tlp)]
    return [
        Entry(Key(STATIC_ADDED, STATIC, n), o.id, json.loads(o.serialize()))
        for n, o in enumerate(objs)
    ]


def page(
    session: Session,
    c: Collection,
    cert: str,
    *,
    limit: int,
    cursor: Key | None = None,
    added_after: datetime | None = None,
    now: datetime,
) -> Page:
    """Up to `limit` objects after `cursor` (and added after `added_after`), in order."""
    n = limit + 1
    sources: list[list[Entry]] = [
        [
            e
            for e in _statics(c, cert)
            if (cursor is None or _tuple(e.key) > _tuple(cursor))
            and (added_after is None or e.key.added > added_after)
        ]
    ]
    identity = export.cert_identity(cert).id
    mark = export.marking_id(c.tlp)
    if "indicators" in c.audience.sources and c.entity_id is None:
        rows = session.execute(_indicator_rows(c, cursor, added_after, now, n)).scalars()
        sources.append([_from_indicator(r, cert, identity, mark) for r in rows])
    if "incidents" in c.audience.sources:
        pairs = session.execute(_observable_rows(c, cursor, added_after, n)).all()
        sources.append([_from_observable(o, i, cert, identity, mark) for o, i in pairs])
    merged = list(heapq.merge(*sources, key=lambda e: _tuple(e.key)))[:n]
    more = len(merged) > limit
    entries = [e for e in merged[:limit] if e.stix_id]
    last = merged[limit - 1].key if more else None
    return Page(entries, more, last.encode() if last else None)


def _tuple(k: Key) -> tuple[datetime, int, int]:
    return (k.added, k.source, k.rid)


def _from_indicator(r: IndicatorRow, cert: str, identity: str, mark: str) -> Entry:
    added = _aware(r.loaded_at)
    obj = export.indicator_dict(
        export.indicator_id(cert, r.type, r.value, r.provider),
        r.type,
        r.value,
        mark,
        created=r.first_seen or added,
        modified=added,
        valid_from=r.first_seen or added,
        valid_until=r.expires,
        confidence=r.confidence,
        created_by_ref=identity,
    )
    return _entry(Key(added, INDICATORS, r.id), obj)


def _from_observable(
    o: IncidentObservableRow, i: IncidentRow, cert: str, identity: str, mark: str
) -> Entry:
    added = _aware(o.added_at)
    obj = export.indicator_dict(
        export.observable_id(cert, i.id, o.type, o.value),
        o.type,
        o.value,
        mark,
        created=i.created_at,
        modified=max(_aware(i.created_at), added),
        valid_from=i.occurred_at or i.created_at,
        created_by_ref=identity,
    )
    return _entry(Key(added, INCIDENTS, o.id), obj)


def _entry(key: Key, obj: dict[str, Any] | None) -> Entry:
    # Rows are filtered to the types a pattern can say; a value no pattern takes
    # (an address that is not one) would still be None here.
    if obj is None:
        return Entry(key, "", {})
    return Entry(key, str(obj["id"]), obj)
