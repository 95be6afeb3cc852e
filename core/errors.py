"""Refusals a person reads: a stable code, its parameters, and English text.

A service raises `SomeError("incident.not_found", incident_id=3)`. The code and
parameters are data: the API turns them into a status and a message in the
caller's language (api.errors, the catalogues in core/locale); `str(exc)` is the
English text made from the code's template, for logs and the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class CodedError(ValueError):
    """Base of each domain's refusals; a subclass names its domain's `templates`
    (code → English template with `{name}` fields for the parameters)."""

    templates: ClassVar[Mapping[str, str]] = {}
    generic: ClassVar[str] = "error"  # the code of a refusal raised with bare text

    def __init__(self, code: str, /, **params: object) -> None:
        template = self.templates.get(code)
        if template is None:
            # Raised with bare English text (code written before codes): kept readable;
            # tests/test_i18n.py finds such raise sites and fails.
            params, template, code = {"text": code}, "{text}", self.generic
        self.code, self.params = code, params
        super().__init__(template.format(**params))
