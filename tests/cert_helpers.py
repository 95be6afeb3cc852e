"""Certification test helpers: entities, tokens, and assessments answered quickly."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient

from certification import catalogue
from certification.registry import Registry
from core.tokens import Role
from tests.conftest import bearer, make_token
from vigia.wiring import Services

PDF = b"%PDF-1.4\n% evidencia de prueba\n"


def world(services: Services) -> dict[str, dict[str, str]]:
    with services.db.transaction() as s:
        Registry.add(s, "ent-a", "Entidad A", "central", ["10.1.0.0/16"], [], "test")
        Registry.add(s, "ent-b", "Entidad B", "municipal", ["10.2.0.0/16"], [], "test")
    return {
        "admin": bearer(make_token(services, Role.ADMIN)),
        "analyst": bearer(make_token(services, Role.ANALYST)),
        "auditor": bearer(make_token(services, Role.AUDITOR)),
        "a": bearer(make_token(services, Role.ENTITY, "ent-a", name="oficial-a")),
        "b": bearer(make_token(services, Role.ENTITY, "ent-b", name="oficial-b")),
    }


def controls(services: Services) -> list[Any]:
    with services.db.transaction(write=False) as s:
        return list(catalogue.get(s).controls)


def fill(
    client: TestClient,
    services: Services,
    who: dict[str, str],
    answer: dict[str, str] | None = None,
    default: str = "implemented",
    evidence_days: int = 365,
) -> dict[str, Any]:
    """Open an assessment and answer every control (with evidence where implemented)."""
    r = client.post("/api/v1/assessments", json={}, headers=who)
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    for c in controls(services):
        value = (answer or {}).get(c.id, default)
        body = {
            "answer": value,
            "justification": "no aplica aquí" if value == "not_applicable" else "",
        }
        put = client.put(f"/api/v1/assessments/{aid}/answers/{c.id}", json=body, headers=who)
        assert put.status_code == 200, put.text
        if value == "implemented" and evidence_days:
            up = client.post(
                f"/api/v1/assessments/{aid}/evidence",
                data={
                    "control_id": c.id,
                    "expires_on": (date.today() + timedelta(days=evidence_days)).isoformat(),
                },
                files={"file": (f"{c.id}.pdf", PDF, "application/pdf")},
                headers=who,
            )
            assert up.status_code == 201, up.text
    got: dict[str, Any] = client.get(f"/api/v1/assessments/{aid}", headers=who).json()
    return got


def review_all(
    client: TestClient, h: dict[str, str], aid: int, reject: dict[str, str] | None = None
) -> None:
    a = client.get(f"/api/v1/assessments/{aid}", headers=h).json()
    for c in a["controls"]:
        if c["answer"] == "not_applicable":
            continue
        comment = (reject or {}).get(c["id"], "")
        body = {"verdict": "rejected" if comment else "accepted", "comment": comment}
        r = client.put(f"/api/v1/assessments/{aid}/reviews/{c['id']}", json=body, headers=h)
        assert r.status_code == 200, r.text
