"""Shared set-up for the incident tests: two entities, tokens, indicators, ingest."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from certification.registry import Registry
from core.tokens import Role
from correlator.store import IndicatorStore
from rules.indicator import Indicator
from tests.conftest import bearer, make_token
from tests.factories import observation
from vigia.wiring import Services

T0 = 1_700_000_000.0  # observation time of the first alert in each test


def world(services: Services) -> dict[str, dict[str, str]]:
    """Entities A and B with their networks, indicators, and a token per caller."""
    with services.db.transaction() as s:
        Registry.add(s, "ent-a", "Entidad A", "central", ["10.1.0.0/16"], ["a.gob.bo"], "test")
        Registry.add(s, "ent-b", "Entidad B", "municipal", ["10.2.0.0/16"], [], "test")
        IndicatorStore.save(
            s,
            [
                Indicator("domain", "evil.example", "feed", confidence=70, event="ev-1"),
                Indicator("domain", "other.example", "feed", confidence=70, event="ev-1"),
                Indicator("domain", "third.example", "feed", confidence=70, event="ev-2"),
                Indicator("domain", "weak.example", "feed", confidence=20),
                Indicator("ip-dst", "203.0.113.66", "feed", confidence=90, tlp="amber"),
            ],
        )
    tokens = {
        "analyst": make_token(services, Role.ANALYST),
        "auditor": make_token(services, Role.AUDITOR),
        "sensor": make_token(services, Role.SENSOR, name="sensor-1"),
        "a": make_token(services, Role.ENTITY, "ent-a", name="oficial-a"),
        "b": make_token(services, Role.ENTITY, "ent-b", name="oficial-b"),
    }
    return {k: bearer(v) for k, v in tokens.items()}


_batch = iter(range(1, 1_000_000))


def seen(
    client: TestClient,
    h: dict[str, dict[str, str]],
    name: str,
    src: str = "10.1.1.5",
    ts: float = T0,
) -> None:
    """A sensor saw `src` ask the DNS for `name`."""
    doc = observation(src=src, ts=ts, dns__question__name=name)
    r = client.post(
        "/api/v1/observations",
        json={"batch_id": f"batch-{next(_batch):06d}", "observations": [doc]},
        headers=h["sensor"],
    )
    assert r.status_code == 200, r.text


def incidents(client: TestClient, who: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/v1/incidents", params=params, headers=who)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["incidents"]
    return found


def move(client: TestClient, h: dict[str, str], inc: dict[str, Any], to: str, **extra: Any) -> Any:
    return client.post(
        f"/api/v1/incidents/{inc['id']}/transitions",
        json={"version": inc["version"], "to": to, **extra},
        headers=h,
    )
