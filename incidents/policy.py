"""The installation's incident policy: grouping window, auto-open threshold, SLA hours."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.settings import Settings
from core.settings_checks import DEFAULT_SLA_HOURS


@dataclass(frozen=True)
class Policy:
    window: timedelta = timedelta(hours=24)
    min_severity: int = 50  # an ungrouped alert at least this severe opens an incident
    sla_hours: dict[str, dict[str, float]] = field(default_factory=lambda: DEFAULT_SLA_HOURS)
    notify_on_triage: bool = True

    @classmethod
    def from_settings(cls, s: Settings) -> Policy:
        return cls(
            timedelta(hours=s.incident_window_h),
            s.incident_min_severity,
            s.sla_hours,
            s.notify_on_triage,
        )

    def due(self, priority: str, clock: str, start: datetime) -> datetime:
        return start + timedelta(hours=self.sla_hours[priority][clock])
