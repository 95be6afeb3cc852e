"""The observer of every stored observation comes from the token: a sensor cannot
report as another, in any spelling of `observer.name` (issue 12, issue 13 #5)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from core.tokens import Role
from correlator.rows import AlertRow, BatchRow, ObservationRow
from correlator.store import IndicatorStore
from rules.indicator import Indicator
from tests.conftest import bearer, make_token
from tests.factories import observation
from vigia.wiring import Services

NAME = "s1"


@pytest.fixture
def centre(services: Services) -> TestClient:
    with services.db.transaction() as s:
        IndicatorStore.save(s, [Indicator("domain", "evil.example", "feed")])
    return TestClient(create_app(services))


def _post(client: TestClient, token: str, batch_id: str, docs: list[dict[str, Any]]) -> Any:
    body = {"batch_id": batch_id, "observations": docs}
    return client.post("/api/v1/observations", json=body, headers=bearer(token))


def _hit(**over: Any) -> dict[str, Any]:
    """An observation of the sensor `s1` matching the indicator, its observer re-spelt."""
    doc = observation(observer=NAME, dns__question__name="evil.example")
    for key, value in over.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def _stored(services: Services) -> tuple[int, int, int]:
    with services.db.transaction(write=False) as s:
        return (
            s.scalar(select(func.count()).select_from(ObservationRow)) or 0,
            s.scalar(select(func.count()).select_from(AlertRow)) or 0,
            s.scalar(select(func.count()).select_from(BatchRow)) or 0,
        )


SPOOFS = {
    # the case: the nesting says s1, a dotted key at the top says another
    "dotted-beside-nested": _hit(**{"observer.name": "sensor-demo-01"}),
    "nested-other": _hit(observer={"name": "sensor-demo-01"}),
    "dotted-only": _hit(observer=None, **{"observer.name": "sensor-demo-01"}),
    "nested-other-dotted-own": _hit(observer={"name": "sensor-demo-01"}, **{"observer.name": NAME}),
    "nested-other-with-more": _hit(observer={"name": "sensor-demo-01", "type": "sensor"}),
    "not-an-object": _hit(observer="sensor-demo-01"),
    "null": _hit(observer=None) | {"observer": None},
    "not-a-string": _hit(observer={"name": [NAME, "sensor-demo-01"]}),
}
REASONS = {
    "not-an-object": "observer must be an object",
    "null": "observer must be an object",
    "not-a-string": "observer.name must be a string",
}


@pytest.mark.parametrize("spelling", sorted(SPOOFS))
def test_every_spelling_of_another_observer_is_refused_and_nothing_stored(
    services: Services, centre: TestClient, spelling: str
) -> None:
    token = make_token(services, Role.SENSOR, name=NAME)
    before = _stored(services)
    # The bad one second: the reason names its position.
    r = _post(centre, token, "batch-spoof-1", [_hit(), SPOOFS[spelling]])
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("observations[1]: ")
    assert REASONS.get(spelling, "'sensor-demo-01' is not the sensor this token") in detail
    if spelling not in REASONS:
        assert f"--observer {NAME}" in detail  # the fix, for a misconfigured sensor
    assert _stored(services) == before
    # The batch id was not consumed: the same id, corrected, is taken.
    ok = _post(centre, token, "batch-spoof-1", [_hit(), _hit()])
    assert ok.status_code == 200 and ok.json()["duplicate"] is False


@pytest.mark.parametrize(
    "doc",
    [
        _hit(),
        _hit(observer=None, **{"observer.name": NAME}),
        _hit(**{"observer.name": NAME}),
        _hit(observer=None),  # none given: the centre names it
        _hit(observer={"name": NAME, "type": "sensor"}),
    ],
    ids=["nested", "dotted", "both-agree", "absent", "nested-with-more"],
)
def test_a_batch_is_stored_and_alerted_as_the_tokens_sensor(
    services: Services, centre: TestClient, doc: dict[str, Any]
) -> None:
    token = make_token(services, Role.SENSOR, name=NAME)
    r = _post(centre, token, "batch-own-01", [doc])
    assert r.status_code == 200, r.text
    assert r.json()["alerts"] == 1
    with services.db.transaction(write=False) as s:
        row = s.scalars(select(ObservationRow)).one()
        batch = s.get(BatchRow, "batch-own-01")
    assert row.observer == NAME and batch is not None and batch.observer == NAME
    # The stored document says it too, in one spelling.
    assert row.doc["observer"]["name"] == NAME and "observer.name" not in row.doc
    if "type" in (doc.get("observer") or {}):
        assert row.doc["observer"]["type"] == "sensor"  # the rest of the object is kept
    alerts = centre.get("/api/v1/alerts", headers=bearer(make_token(services, Role.ANALYST)))
    [alert] = alerts.json()["alerts"]
    assert alert["observer"]["name"] == NAME


def test_an_admin_names_the_observer_once(services: Services, centre: TestClient) -> None:
    admin = make_token(services, Role.ADMIN)
    # An admin (a replay, a test feed) may name the observer, one value per observation.
    ok = _post(centre, admin, "batch-admin-1", [_hit(observer=None, **{"observer.name": "lab"})])
    assert ok.status_code == 200, ok.text
    with services.db.transaction(write=False) as s:
        row = s.scalars(select(ObservationRow)).one()
    assert row.observer == "lab" and row.doc["observer"] == {"name": "lab"}
    # Two values that disagree, or none at all: refused, nothing stored.
    before = _stored(services)
    r = _post(centre, admin, "batch-admin-2", [_hit(**{"observer.name": "lab"})])
    assert r.status_code == 422
    assert r.json()["detail"] == ("observations[0]: observer.name given twice, as 's1' and 'lab'")
    r = _post(centre, admin, "batch-admin-3", [_hit(observer=None)])
    assert r.status_code == 422
    assert r.json()["detail"] == "observations[0]: missing field observer.name"
    assert _stored(services) == before
