"""Vocabularies kept as data (JSON beside this file), read once on demand."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def indicator_types() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("indicator_types.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def zeek_where() -> dict[str, Any]:
    """Zeek's Intel::Where names → the ECS fields of the same place (meta.if_in)."""
    text = resources.files(__package__).joinpath("zeek_where.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data
