"""The sensor's counters in Prometheus text format, on a local HTTP port."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

_GAUGES = frozenset({"spooled_batches", "spool_bytes", "refused_batches_kept"})


class SensorCollector:
    def __init__(self, counters: Callable[[], dict[str, int]], observer: str) -> None:
        self.counters = counters
        self.observer = observer

    def collect(self) -> Iterator[Metric]:
        for name, value in sorted(self.counters().items()):
            metric = f"vigia_sensor_{name}"
            family: Metric
            if name in _GAUGES:
                family = GaugeMetricFamily(metric, f"sensor {name}", labels=["observer"])
            else:
                family = CounterMetricFamily(metric, f"sensor {name}", labels=["observer"])
            family.add_metric([self.observer], value)
            yield family


def serve(
    port: int, counters: Callable[[], dict[str, int]], observer: str, addr: str = "127.0.0.1"
) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SensorCollector(counters, observer))
    start_http_server(port, addr=addr, registry=registry)
    return registry
