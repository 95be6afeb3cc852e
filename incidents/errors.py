"""What the incident services refuse, each mapped to one HTTP status by the API."""

from __future__ import annotations


class IncidentError(ValueError):
    """Bad input: answered 422 with the message."""


class NotFound(IncidentError):
    """No such incident, alert or task (or not one the caller may see): 404."""


class Conflict(IncidentError):
    """A stale version or a transition the lifecycle does not allow: 409."""

    def __init__(self, message: str, allowed: list[str] | None = None) -> None:
        super().__init__(message)
        self.allowed = allowed or []
