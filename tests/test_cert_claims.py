"""Certification statements in docs/status.md that no other test checked."""

from __future__ import annotations

from sqlalchemy import func, select

from certification import generate
from core import audit
from core.clock import utcnow
from vigia.wiring import Services


def test_a_synthetic_registry_is_written_without_audit_records(
    sqlite_services: Services,
) -> None:
    def records() -> int:
        with sqlite_services.db.transaction(write=False) as s:
            return s.execute(select(func.count()).select_from(audit.AuditRecord)).scalar_one()

    before = records()
    with sqlite_services.db.transaction() as s:
        generate.constituency(s, 40, utcnow(), "2026.1")
    assert records() == before
    with sqlite_services.db.transaction(write=False) as s:
        assert audit.verify(s).ok  # and the chain it left alone still holds
