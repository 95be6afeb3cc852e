"""Expiry: indicators age out when their source stops giving them.

Each load of a source sets `expires` to now + the per-type default
(rules/vocab/indicator_types.json, `expiry_days`) unless the source gave its
own (STIX `valid_until`...). Types without a default (file hashes) do not
expire on their own.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from rules.indicator import Indicator
from rules.vocab import indicator_types


def with_default_expiry(indicators: list[Indicator], now: datetime) -> list[Indicator]:
    days = indicator_types().get("expiry_days", {})
    out = []
    for ind in indicators:
        if ind.expires is None and isinstance(days.get(ind.type), int):
            ind = dataclasses.replace(ind, expires=now + timedelta(days=days[ind.type]))
        out.append(ind)
    return out
