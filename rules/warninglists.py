"""MISP warninglists: well-known values (public resolvers, top sites, empty-file hashes...)
that would only raise false positives. Applied when indicators are taken in: a
listed indicator is kept out, counted under the name of the list that caught it.

The lists come from pymispwarninglists (its bundled copy; nothing is fetched)
or from a folder of `list.json` files such as MISP's repository.
"""

from __future__ import annotations

import json
from pathlib import Path

from pymispwarninglists import WarningLists

from rules.indicator import Indicator
from rules.sources import LoadResult


class Warnings:
    def __init__(self, lists: WarningLists) -> None:
        self._lists = lists

    @classmethod
    def bundled(cls) -> Warnings:
        return cls(WarningLists(slow_search=False))

    @classmethod
    def from_folder(cls, folder: Path) -> Warnings:
        docs = [json.loads(p.read_text()) for p in sorted(folder.glob("*/list.json"))]
        return cls(WarningLists(slow_search=False, lists=docs))

    def __len__(self) -> int:
        return len(self._lists)

    def catching(self, ind: Indicator) -> str | None:
        """The name of the first list that holds this indicator, for its type."""
        for wl in self._lists.search(ind.value):
            types = getattr(wl, "matching_attributes", None) or []
            if not types or ind.type in types:
                return str(wl.name)
        return None

    def apply(self, result: LoadResult) -> LoadResult:
        """Keep listed indicators out of `result`, counted as `warninglist: <name>`."""
        kept = []
        for ind in result.indicators:
            caught = self.catching(ind)
            if caught is None:
                kept.append(ind)
            else:
                result.skipped[f"warninglist: {caught}"] += 1
        result.indicators = kept
        return result
