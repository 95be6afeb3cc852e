"""The active indicators in Elasticsearch, as ECS `threat.indicator` documents.

For the tools a CERT already runs on its cluster — Kibana, Elastic Security's
indicator match rules — beside Vigía's own matching, which stays in memory. A
scheduled job sends the indicators stamped with a later version than the
highest held there (the same version stamp the live index refreshes by), and
removes the expired ones. Document ids come from type, value and provider, so
a resend replaces rather than duplicates.
"""

from __future__ import annotations

import hashlib
from typing import Any

from elasticsearch import ApiError, TransportError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import iso
from correlator.esstore import EsError, EsTelemetry
from correlator.rows import IndicatorRow
from correlator.store import IndicatorStore
from rules.vocab import indicator_types

INDICATORS = "vigia-indicators"
_KW = {"type": "keyword"}
_DATE = {"type": "date"}
_MAPPING = {
    "dynamic": True,
    "properties": {
        "@timestamp": _DATE,
        "event": {"properties": {"kind": _KW, "category": _KW, "type": _KW}},
        "threat": {
            "properties": {
                "feed": {"properties": {"name": _KW}},
                "indicator": {
                    "properties": {
                        "type": _KW,
                        "provider": _KW,
                        "confidence": _KW,
                        "first_seen": _DATE,
                        "last_seen": _DATE,
                        "ip": {"type": "ip"},
                        "url": {"properties": {"domain": _KW, "full": _KW}},
                        "email": {"properties": {"address": _KW}},
                        "file": {
                            "properties": {
                                "name": _KW,
                                "hash": {"properties": {"md5": _KW, "sha1": _KW, "sha256": _KW}},
                            }
                        },
                        "marking": {"properties": {"tlp": _KW}},
                    }
                },
            }
        },
        "vigia": {
            "properties": {
                "type": _KW,
                "value": _KW,
                "to_ids": {"type": "boolean"},
                "whitelist": {"type": "boolean"},
                "if_in": _KW,
                "changed_in": {"type": "long"},
                "expires": _DATE,
            }
        },
    },
}


def init(es: EsTelemetry) -> list[str]:
    """The template and the index (idempotent, as `vigia es init` is)."""
    try:
        es.client.indices.put_index_template(
            name=INDICATORS,
            index_patterns=[INDICATORS],
            priority=200,
            template={"mappings": _MAPPING},
        )
        if not es.client.indices.exists(index=INDICATORS):
            es.client.indices.create(index=INDICATORS)
    except (ApiError, TransportError) as exc:
        raise EsError(f"elasticsearch: {exc}") from None
    return [f"template {INDICATORS}", f"index {INDICATORS}"]


def _confidence(value: int) -> str:
    """ECS threat.indicator.confidence from 0-100 (its vocabulary: None, Low, Medium, High)."""
    return "None" if value <= 0 else "Low" if value < 34 else "Medium" if value < 67 else "High"


def document(row: IndicatorRow) -> tuple[str, dict[str, Any]]:
    """The ECS document of a stored indicator, and its id."""
    ecs = indicator_types()["ecs_indicator"][row.type]
    indicator: dict[str, Any] = {
        "type": "ipv6-addr" if ecs["type"] == "ipv4-addr" and ":" in row.value else ecs["type"],
        "provider": row.provider,
        "confidence": _confidence(row.confidence),
        "marking": {"tlp": row.tlp.upper()},
    }
    field = ecs["field"]
    if field and not (field == "ip" and "/" in row.value):  # a network has no ECS field
        value = f"http://{row.value}" if row.type == "url" else row.value
        node = indicator
        *parents, leaf = field.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    for name in ("first_seen", "last_seen"):
        if getattr(row, name) is not None:
            indicator[name] = iso(getattr(row, name))
    vigia: dict[str, Any] = {
        "type": row.type,
        "value": row.value,
        "to_ids": row.to_ids,
        # Zeek's meta.whitelist: a known-good value, never a threat (an indicator match
        # rule filters on it as on to_ids); meta.if_in: where a match counts.
        "whitelist": bool(row.whitelist),
        "changed_in": row.changed_in,
    }
    if row.if_in:
        vigia["if_in"] = row.if_in.split(",")
    if row.expires is not None:
        vigia["expires"] = iso(row.expires)
    doc = {
        "@timestamp": iso(row.loaded_at),
        "event": {"kind": "enrichment", "category": ["threat"], "type": ["indicator"]},
        "threat": {"indicator": indicator, "feed": {"name": row.event or row.provider}},
        "vigia": vigia,
    }
    key = "\x1f".join((row.type, row.value, row.provider)).encode()
    return hashlib.sha1(key, usedforsecurity=False).hexdigest(), doc


def sync(es: EsTelemetry, session: Session, page: int = 1000) -> int:
    """Send the indicators written after the highest version held there; drop the
    expired. Returns how many were sent."""
    try:
        hits = es.client.search(
            index=INDICATORS,
            size=1,
            sort=[{"vigia.changed_in": {"order": "desc", "unmapped_type": "long"}}],
        )["hits"]["hits"]
    except (ApiError, TransportError) as exc:
        raise EsError(f"elasticsearch: {exc}") from None
    # Rows of the highest version held are sent again: a run may have stopped halfway.
    since = hits[0]["_source"]["vigia"]["changed_in"] - 1 if hits else -1
    if since >= IndicatorStore.version(session)[0]:  # the index is ahead: a restored store
        since = -1
    sent, last_id = 0, 0
    while True:
        rows = (
            session.execute(
                select(IndicatorRow)
                .where(IndicatorRow.changed_in > since, IndicatorRow.id > last_id)
                .order_by(IndicatorRow.id)
                .limit(page)
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        last_id = rows[-1].id
        actions = []
        for row in rows:
            doc_id, doc = document(row)
            actions.append(
                {"_op_type": "index", "_index": INDICATORS, "_id": doc_id, "_source": doc}
            )
        sent += es.bulk(actions)
    try:
        es.client.indices.refresh(index=INDICATORS)  # what was just sent, expired ones too
        es.client.delete_by_query(
            index=INDICATORS,
            query={"range": {"vigia.expires": {"lte": "now"}}},
            conflicts="proceed",
        )
    except (ApiError, TransportError) as exc:
        raise EsError(f"elasticsearch: {exc}") from None
    return sent
