"""The observation contract: documents read back, nested or with dotted keys."""

from __future__ import annotations

from typing import Any

import pytest

from sensors.observation import Observation, ObservationError
from tests.factories import observation


def _dotted(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            out.update(_dotted(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_nested_and_dotted_documents_read_the_same() -> None:
    doc = observation(
        dns__question__name="evil.example",
        url__original=["http://a.example/x", "http://b.example/y"],
        file__hash__md5="d41d8cd98f00b204e9800998ecf8427e",
    )
    doc["dns"]["answers"] = [{"data": "192.0.2.7"}, {"data": 7}, "junk"]
    nested = Observation.from_ecs(doc)
    assert nested.values == {
        "dns.answers.data": ["192.0.2.7"],
        "dns.question.name": ["evil.example"],
        "url.original": ["http://a.example/x", "http://b.example/y"],
        "file.hash.md5": ["d41d8cd98f00b204e9800998ecf8427e"],
    }  # dict equality: the fields' order aside
    dotted = Observation.from_ecs(_dotted(doc))
    assert dotted == Observation.from_ecs(doc)
    assert (dotted.src_ip, dotted.dst_ip, dotted.src_port, dotted.observer) == (
        "10.1.1.5",
        "203.0.113.9",
        40000,
        "sensor-1",
    )
    # A dotted key at the top wins over the same field nested.
    mixed = {**doc, "observer.name": "sensor-2"}
    assert Observation.from_ecs(mixed).observer == "sensor-2"
    assert Observation.from_ecs(nested.to_ecs()) == nested


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"@timestamp": None}, "bad timestamp"),
        ({"source": {"ip": "10.1.1.300"}}, "bad timestamp or address"),
        ({"destination": {}}, "bad timestamp or address"),
        ({"observer": {"name": ""}}, "observer.name"),
        ({"network": {"transport": "carrier-pigeon"}}, "network.transport"),
        ({"source": {"ip": "10.1.1.5", "port": 70000}}, "bad port"),
        ({"dns": {"question": {"name": ["ok.example", 5]}}}, "dns.question.name must be"),
    ],
)
def test_bad_documents_are_refused_with_the_reason(change: dict[str, Any], reason: str) -> None:
    doc = {**observation(dns__question__name="evil.example"), **change}
    with pytest.raises(ObservationError, match=reason):
        Observation.from_ecs(doc)
    no_ts = observation()
    del no_ts["@timestamp"]
    with pytest.raises(ObservationError, match="missing field @timestamp"):
        Observation.from_ecs(no_ts)
