"""Alert search for the triage routes in Elasticsearch.

Elasticsearch answers which alerts, in which order (first seen, newest first,
`search_after` for the cursor); the SQL store, the record, gives their current
state, and each row is checked again against the filter there — so an alert
whose state Elasticsearch has not caught up with (the sync job runs every few
seconds) is left out rather than shown wrongly, and visibility (entity, TLP)
never rests on the index alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cursor import decode_cursor, encode_cursor
from core.telemetry import Telemetry
from correlator.esstore import ALERTS, EsError, es_errors
from correlator.rows import AlertRow
from correlator.store import AlertFilter, AlertStore

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

log = logging.getLogger("vigia.essearch")

Page = tuple[Sequence[AlertRow], str | None]


class SearchAlerts(Protocol):
    """The triage search the API is given: a page of alerts newest first, and the
    cursor of the next (AlertStore.search, or SearchWithFallback)."""

    def __call__(
        self, session: Session, f: AlertFilter, limit: int, cursor: str | None
    ) -> Page: ...


def query(f: AlertFilter) -> dict[str, Any]:
    """The filter as an Elasticsearch query on the alert documents."""
    must: list[dict[str, Any]] = []
    window: dict[str, str] = {}
    if f.since:
        window["gte"] = f.since.isoformat()
    if f.until:
        window["lt"] = f.until.isoformat()
    if window:
        must.append({"range": {"event.start": window}})
    if f.indicator_type:
        must.append({"term": {"threat.enrichments.indicator.type": f.indicator_type}})
    if f.entity_id:
        must.append({"term": {"organization.id": f.entity_id}})
    if f.status:
        must.append({"term": {"vigia.status": f.status}})
    out: dict[str, Any] = {"bool": {"filter": must}}
    if f.hide_tlp:
        out["bool"]["must_not"] = [{"terms": {"vigia.tlp": list(f.hide_tlp)}}]
    return out


def matches(row: AlertRow, f: AlertFilter) -> bool:
    """The filter on the SQL row, as AlertStore.search applies it."""
    return (
        (f.since is None or row.timestamp >= f.since)
        and (f.until is None or row.timestamp < f.until)
        and (f.indicator_type is None or row.indicator_type == f.indicator_type)
        and (f.entity_id is None or row.entity_id == f.entity_id)
        and (f.status is None or row.status == f.status)
        and row.tlp not in f.hide_tlp
    )


@dataclass
class EsAlertSearch:
    client: Elasticsearch

    def search(
        self, session: Session, f: AlertFilter, limit: int, cursor: str | None
    ) -> tuple[Sequence[AlertRow], str | None]:
        """Newest first, as AlertStore.search; the cursor is the last hit's sort values."""
        body: dict[str, Any] = {
            "query": query(f),
            "sort": [{"event.start": "desc"}, {"event.id": "desc"}],
            "size": limit + 1,
        }
        if cursor:
            ts, aid = decode_cursor(cursor)
            body["search_after"] = [int(ts.timestamp() * 1000), aid]
        try:
            hits = self.client.search(index=ALERTS, **body)["hits"]["hits"]
        except es_errors() as exc:
            raise EsError(f"elasticsearch: {exc}") from None
        nxt = None
        if len(hits) > limit:
            hits = hits[:limit]
            millis, aid = hits[-1]["sort"]
            nxt = encode_cursor(datetime.fromtimestamp(millis / 1000, UTC), aid)
        ids = [h["_id"] for h in hits]
        rows = {
            r.id: r for r in session.execute(select(AlertRow).where(AlertRow.id.in_(ids))).scalars()
        }
        return [rows[i] for i in ids if i in rows and matches(rows[i], f)], nxt


@dataclass
class SearchWithFallback:
    """The triage search in Elasticsearch (rows and state from SQL), in the SQL store
    when the cluster fails: the analyst still gets the page."""

    client: Elasticsearch
    telemetry: Telemetry

    def __call__(self, session: Session, f: AlertFilter, limit: int, cursor: str | None) -> Page:
        try:
            return EsAlertSearch(self.client).search(session, f, limit, cursor)
        except EsError as exc:
            self.telemetry.count("es_search_failures")
            log.warning("alert search in Elasticsearch failed (%s); searching SQL", exc)
        return AlertStore.search(session, f, limit, cursor)
