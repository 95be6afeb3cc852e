"""Elasticsearch for telemetry at scale: observations in a data stream (with a
retention lifecycle), alerts in an index upserted by their deterministic id, so
that retries and replicas never duplicate. `vigia es init` bootstraps it.

Elasticsearch receives what the SQL store accepted (one `_bulk` after each
committed batch, with retries and back-off) and, by a sync job, the alerts
whose state changed since; retro-hunt (eshunt) and the triage search
(essearch) run there. The SQL store stays the record, so a cluster that is
away loses nothing.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from core.clock import iso, parse_iso, utcnow
from correlator.eskeys import match_keys
from correlator.rows import AlertRow
from correlator.store import AlertStore
from sensors.observation import VALUE_FIELDS

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

log = logging.getLogger("vigia.elasticsearch")
ALERTS = "vigia-alerts"
OBSERVATIONS = "logs-vigia.observations-default"


def es_errors() -> tuple[type[Exception], ...]:
    """The client's failures, for an `except`. The client is imported where a cluster
    is used, not with these modules: it costs every start of the centre ~0.3 s."""
    from elasticsearch import ApiError, TransportError

    return ApiError, TransportError


_IP = {"type": "ip", "fields": {"text": {"type": "keyword"}}}  # text: prefix queries
_KW = {"type": "keyword"}
_VALUE = {"type": "keyword", "normalizer": "vigia_lowercase"}  # terms queries, case-free
_ENDPOINT = {"properties": {"ip": _IP, "port": {"type": "integer"}}}
_COMMON = {
    "@timestamp": {"type": "date"},
    "observer": {"properties": {"name": _KW}},
    "source": _ENDPOINT,
    "destination": _ENDPOINT,
    "network": {"properties": {"transport": _KW, "community_id": _KW, "protocol": _KW}},
    "organization": {"properties": {"id": _KW, "name": _KW}},
}
_ALERT_MAPPING = {
    "dynamic": True,
    "properties": {
        **_COMMON,
        "event": {
            "properties": {
                "id": _KW,
                "kind": _KW,
                "count": {"type": "long"},
                "severity": {"type": "integer"},
                "start": {"type": "date"},
                "end": {"type": "date"},
            }
        },
        "threat": {
            "properties": {
                "enrichments": {
                    "properties": {
                        "matched": {"properties": {"atomic": _KW, "field": _KW, "type": _KW}},
                        "indicator": {"properties": {"type": _KW, "value": _KW, "provider": _KW}},
                    }
                }
            }
        },
        "rule": {"properties": {"name": _KW, "ruleset": _KW}},
        "vigia": {
            "properties": {
                "status": _KW,
                "tlp": _KW,
                "incident": {"type": "long"},
                "updated": {"type": "date"},
            }
        },
    },
}


def _observation_properties() -> dict[str, Any]:
    """The common fields, and each value field (where indicators match) as a
    lower-cased keyword: the retro-hunt's terms queries run on them."""
    props: dict[str, Any] = copy.deepcopy(_COMMON)  # the alerts mapping shares _COMMON
    props["vigia"] = {"properties": {"match_keys": _KW}}  # correlator.eskeys
    for name in sorted(VALUE_FIELDS):
        *parents, leaf = name.split(".")
        node = props
        for p in parents:
            node = node.setdefault(p, {"properties": {}})["properties"]
        node[leaf] = _VALUE
    return props


def alert_doc(row: AlertRow) -> dict[str, Any]:
    """An alert as Elasticsearch holds it: its ECS document, its state, and when the
    SQL row last changed (what the sync job resumes from)."""
    doc = row.to_ecs()
    doc["vigia"] = {**doc["vigia"], "tlp": row.tlp, "updated": iso(row.updated_at)}
    return doc


class EsError(Exception):
    """One line: what the cluster refused."""


@dataclass
class EsTelemetry:
    client: Elasticsearch
    retention_days: int = 30

    def init(self) -> list[str]:
        """Index templates (ECS mappings), the alerts index, the observations data
        stream with its retention. Idempotent: run it at every start if you like."""
        done = []
        try:
            self.client.indices.put_index_template(
                name="vigia-observations",
                index_patterns=["logs-vigia.observations-*"],
                data_stream={},
                priority=200,
                template={
                    "settings": {
                        "analysis": {
                            "normalizer": {
                                "vigia_lowercase": {"type": "custom", "filter": ["lowercase"]}
                            }
                        }
                    },
                    "mappings": {"dynamic": True, "properties": _observation_properties()},
                    "lifecycle": {"data_retention": f"{self.retention_days}d"},
                },
            )
            done.append("template vigia-observations")
            if self.client.indices.exists(index=OBSERVATIONS):
                # A stream made before the match keys: its write index learns them too.
                self.client.indices.put_mapping(
                    index=OBSERVATIONS, properties={"vigia": {"properties": {"match_keys": _KW}}}
                )
            self.client.indices.put_index_template(
                name="vigia-alerts",
                index_patterns=[f"{ALERTS}*"],
                priority=200,
                template={"mappings": _ALERT_MAPPING},
            )
            done.append("template vigia-alerts")
            if not self.client.indices.exists(index=ALERTS):
                self.client.indices.create(index=ALERTS)
                done.append(f"index {ALERTS}")
        except es_errors() as exc:
            raise EsError(f"elasticsearch: {exc}") from None
        return done

    def synced_until(self) -> datetime | None:
        """The latest SQL change among the alerts held here (None when none are)."""
        try:
            hits = self.client.search(
                index=ALERTS,
                size=1,
                sort=[{"vigia.updated": {"order": "desc", "unmapped_type": "date"}}],
                query={"exists": {"field": "vigia.updated"}},
            )["hits"]["hits"]
        except es_errors() as exc:
            raise EsError(f"elasticsearch: {exc}") from None
        return parse_iso(hits[0]["_source"]["vigia"]["updated"]) if hits else None

    def sync_alerts(self, session: Session, overlap_s: float = 60, page: int = 500) -> int:
        """Send the alerts whose SQL row changed since the latest one held here (less
        an overlap for replicas' clocks and late commits): state changes made by
        triage and incidents reach Elasticsearch. Returns how many were sent."""
        # Nothing untouched for longer than the retention: it would only be expired
        # again (and an index it emptied must not mean sending the whole history).
        since = utcnow() - timedelta(days=self.retention_days)
        held = self.synced_until()
        if held is not None:
            since = max(since, held - timedelta(seconds=overlap_s))
        sent, docs = 0, []
        for row in AlertStore.updated_since(session, since, page):
            docs.append(alert_doc(row))
            if len(docs) == page:
                sent += self.mirror_alerts(docs)
                docs = []
        return sent + self.mirror_alerts(docs)

    def expire_alerts(self) -> int:
        """Alerts untouched (in SQL) for longer than the retention go from the index;
        the SQL store keeps them, with their incidents. The alerts' lifecycle, which
        a data stream cannot give an index updated by id. Returns how many went."""
        try:
            resp = self.client.delete_by_query(
                index=ALERTS,
                query={"range": {"vigia.updated": {"lt": f"now-{self.retention_days}d"}}},
                conflicts="proceed",
            )
        except es_errors() as exc:
            raise EsError(f"elasticsearch: {exc}") from None
        return int(resp.get("deleted", 0))

    def store_observations(self, batch_id: str, docs: list[dict[str, Any]]) -> int:
        """A batch's observations, each by an id made of the batch's and its place, so
        a batch sent again (a retry, another replica) is stored once: Elasticsearch
        answers 409 for those it holds. Raises EsError when it cannot take them."""
        return self.bulk(
            [
                {
                    "_op_type": "create",
                    "_index": OBSERVATIONS,
                    "_id": f"{batch_id}:{n}",
                    "_source": {**d, "vigia": {**d.get("vigia", {}), "match_keys": match_keys(d)}},
                }
                for n, d in enumerate(docs)
            ]
        )

    def mirror_alerts(self, alerts: list[dict[str, Any]]) -> int:
        """Alerts indexed by event.id (the latest fold replaces the earlier one)."""
        return self.bulk(
            [
                {"_op_type": "index", "_index": ALERTS, "_id": a["event"]["id"], "_source": a}
                for a in alerts
            ]
        )

    def bulk(self, actions: list[dict[str, Any]]) -> int:
        """One `_bulk`, 429s retried with back-off; documents already held (409 on a
        create) count as done."""
        if not actions:
            return 0
        from elasticsearch import helpers

        try:
            ok, errors = helpers.bulk(
                self.client, actions, max_retries=3, initial_backoff=0.5, raise_on_error=False
            )
        except es_errors() as exc:
            raise EsError(f"elasticsearch: {exc}") from None
        refused = [e for e in (errors if isinstance(errors, list) else []) if _status(e) != 409]
        if refused or (errors and not isinstance(errors, list)):
            raise EsError(f"elasticsearch refused {len(refused)} of {len(actions)} documents")
        return int(ok)


def _status(error: dict[str, Any]) -> int:
    return int(next(iter(error.values())).get("status", 0))
