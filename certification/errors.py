"""What the certification services refuse; the API maps each to one status."""

from __future__ import annotations


class CertError(ValueError):
    """Bad input: 422."""


class CertNotFound(CertError):
    """No such assessment, evidence or certificate, or not the caller's: 404."""


class CertConflict(CertError):
    """Not in this state: 409."""
