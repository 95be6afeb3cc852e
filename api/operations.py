"""What an operator watches: the gauges read from the stores and the process
counters, as Prometheus metrics; and readiness (can this replica serve?)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from api.services import Services
from certification.models import CertificateRow
from correlator.rows import AlertRow
from correlator.sightings import SightingRow
from incidents.models import IncidentRow, NotificationRow
from incidents.taxonomy import vocab


def gauges(session: Session) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Store-wide figures, a few GROUP BYs: the same from every replica."""

    def by(q: Any, label: str) -> list[tuple[dict[str, str], float]]:
        return [({label: str(k)}, float(n)) for k, n in session.execute(q)]

    open_states = vocab()["open_states"]
    return {
        "alerts": by(select(AlertRow.status, func.count()).group_by(AlertRow.status), "status"),
        "incidents_open": by(
            select(IncidentRow.priority, func.count())
            .where(IncidentRow.status.in_(open_states))
            .group_by(IncidentRow.priority),
            "priority",
        ),
        "queue_depth": [
            (
                {"queue": "notifications"},
                float(
                    session.scalar(select(func.count()).where(NotificationRow.status == "pending"))
                    or 0
                ),
            ),
            (
                {"queue": "sightings"},
                float(
                    session.scalar(select(func.count()).where(SightingRow.sent_at.is_(None))) or 0
                ),
            ),
        ],
        "certificates": by(
            select(CertificateRow.status, func.count()).group_by(CertificateRow.status), "status"
        ),
    }


class _Collector:
    def __init__(self, services: Services, store: dict[str, list[tuple[dict[str, str], float]]]):
        self.services, self.store = services, store

    def collect(self) -> Iterator[Metric]:
        s = self.services
        counters, jobs = s.telemetry.snapshot()
        for name in sorted(
            {
                "ingest_batches",
                "ingest_observations",
                "ingest_batches_duplicate",
                "ingest_batches_rejected",
                "alerts_upserted",
                "files_scanned",
            }
            | set(counters)
        ):
            c = CounterMetricFamily(f"vigia_{name}", f"{name.replace('_', ' ')} by this process")
            c.add_metric([], counters.get(name, 0))
            yield c
        for (metric, label), counts in sorted(s.telemetry.labelled_snapshot().items()):
            c = CounterMetricFamily(
                f"vigia_{metric}", f"{metric.replace('_', ' ')} by this process", labels=[label]
            )
            for labelled, n in sorted(counts.items()):
                c.add_metric([labelled], n)
            yield c
        g = GaugeMetricFamily("vigia_indicators_indexed", "indicators in this process's index")
        g.add_metric([], s.live.index.size)
        yield g
        pack = s.rules.state.pack
        g = GaugeMetricFamily("vigia_yara_rules", "rules in the running YARA pack")
        g.add_metric([], len(list(pack.rules)) if pack else 0)
        yield g
        g = GaugeMetricFamily("vigia_yara_pack_error", "1 when the last reload was refused")
        g.add_metric([], 1 if s.rules.state.error else 0)
        yield g
        for name, rows in self.store.items():
            labels = sorted({k for lbl, _ in rows for k in lbl}) or ["kind"]
            g = GaugeMetricFamily(
                f"vigia_{name}", f"{name.replace('_', ' ')} in the store", labels=labels
            )
            for lbl, value in rows:
                g.add_metric([lbl.get(k, "") for k in labels], value)
            yield g
        runs = CounterMetricFamily(
            "vigia_job_runs", "scheduled job runs", labels=["job", "outcome"]
        )
        last = GaugeMetricFamily(
            "vigia_job_last_duration_seconds", "last run's duration", labels=["job"]
        )
        done = GaugeMetricFamily(
            "vigia_job_last_finished_timestamp_seconds", "last run's end", labels=["job"]
        )
        for job, o in sorted(jobs.items()):
            for outcome in ("ok", "failed", "skipped"):
                runs.add_metric([job, outcome], getattr(o, outcome))
            last.add_metric([job], o.last_seconds)
            done.add_metric([job], o.last_finished)
        yield from (runs, last, done)


def metrics_text(services: Services, session: Session) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(services, gauges(session)))
    return generate_latest(registry)


def ready(services: Services) -> tuple[bool, dict[str, Any]]:
    """Ready when the database answers and the index has been built; liveness is /health.
    Never waits for the index: while it loads (in the background) it says how far."""
    live = services.live
    try:
        with services.db.transaction(write=False) as session:
            session.execute(text("SELECT 1"))
            if live.ready:
                live.current(session)
    except Exception as exc:  # whatever the driver says: this replica cannot serve now
        return False, {"database": f"unavailable: {type(exc).__name__}"}
    if not live.ready:
        live.start()  # a no-op once it runs
        detail: dict[str, Any] = {"database": "ok", "index": "loading", "loaded": live.loaded}
        if live.failure:
            detail["error"] = live.failure
        return False, detail
    return True, {"database": "ok", "index": "ready", "indicators": live.index.size}
