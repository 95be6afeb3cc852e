"""axe-core run inside a console page by Playwright (issue 15): the serious and
critical violations it finds. The engine is vendored for the tests only
(tests/vendor/axe-core, checked by its digest); the centre never serves it."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
BAD = ("serious", "critical")


@cache
def _source() -> str:
    data = AXE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == AXE_SHA256, "tests/vendor/axe-core changed"
    return data.decode()


def violations(page: Any, impacts: tuple[str, ...] = BAD) -> list[dict[str, Any]]:
    """axe.run over the whole page (WCAG 2.x A and AA rules and axe's best practices);
    the violations of these impacts, each with its rule, help text and first nodes.
    (Evaluated through the DevTools protocol, so the page's CSP does not block it.)"""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_source())
    assert page.evaluate("() => axe.version") == AXE_VERSION
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ["violations"]});
          return r.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))
          }));
        }"""
    )
    return [v for v in found if v["impact"] in impacts]
