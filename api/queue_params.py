"""The alert queue's address (issue 15): its filters as the URL carries them, read
into an incidents.alert_queue.QueueFilter, and the links that keep them.

Every filter has a Spanish name in the address (`?estado=`, `?entidad=`, `?sensor=`,
`?tipo=`, `?gravedad=`, `?recibida_desde=`, `?recibida_hasta=`, `?vista_desde=`,
`?vista_hasta=`, `?q=`, `?asignada=`, `?orden=`), so a filtered queue can be
bookmarked and shared. A value the queue does not know is not applied: it is named
next to its field (never a 500, no input lost)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from core.i18n import N_
from incidents import alert_queue

FIELDS = (
    "estado",
    "entidad",
    "sensor",
    "tipo",
    "gravedad",
    "recibida_desde",
    "recibida_hasta",
    "vista_desde",
    "vista_hasta",
    "q",
    "asignada",
    "orden",
)
DATES = ("recibida_desde", "recibida_hasta", "vista_desde", "vista_hasta")
NOBODY = "nadie"  # ?asignada=nadie: the alerts no analyst has taken
MAX_LEN = 200


@dataclass
class Params:
    """The filters as given (shown back in the form) and what they mean."""

    given: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)  # field → message id
    filter: alert_queue.QueueFilter = field(default_factory=alert_queue.QueueFilter)
    sort: str = alert_queue.DEFAULT_SORT

    def link(self, **changes: str | None) -> str:
        """This queue's address with some filters changed (None or "" drops one)."""
        merged = {**self.given, **changes}
        kept = {k: v for k, v in merged.items() if v and (k in FIELDS or k == "cursor")}
        if kept.get("orden") == alert_queue.DEFAULT_SORT:
            kept.pop("orden")
        return "/console/alertas" + (f"?{urlencode(kept)}" if kept else "")

    def query(self) -> str:
        """The filters alone, as a query string (for the poll and the forms' return)."""
        return urlencode({k: v for k, v in self.given.items() if v and k in FIELDS})


def _date(text: str) -> datetime:
    """A moment as the form's datetime-local field gives it (or ISO 8601); UTC unless
    it names its zone."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read(
    raw: Mapping[str, str],
    entity_id: str | None,
    hide_tlp: tuple[str, ...],
    entity_fixed: bool,
) -> Params:
    """The queue's filters from the address. `entity_id`/`hide_tlp`: what the caller
    may see (an entity: its own, `entity_fixed`, whatever the address says)."""
    given = {k: raw.get(k, "").strip()[:MAX_LEN] for k in FIELDS}
    p = Params(given)
    errors = p.errors

    def pick(name: str, allowed: object) -> str | None:
        value = given[name]
        if value and value not in allowed:  # type: ignore[operator]
            errors[name] = N_("queue.error.choice")
            return None
        return value or None

    status = pick("estado", alert_queue.STATUSES)
    kind = pick("tipo", (*alert_queue.kinds(), alert_queue.OTHER_KIND))
    severity = pick("gravedad", alert_queue.SEVERITIES)
    dates: dict[str, datetime | None] = {}
    for name in DATES:
        try:
            dates[name] = _date(given[name]) if given[name] else None
        except ValueError:
            errors[name] = N_("queue.error.date")
            dates[name] = None
    for start, end in (("recibida_desde", "recibida_hasta"), ("vista_desde", "vista_hasta")):
        lo, hi = dates[start], dates[end]
        if lo and hi and hi <= lo:
            errors[end] = N_("queue.error.range")
    try:
        alert_queue.parse_sort(given["orden"] or alert_queue.DEFAULT_SORT)
        p.sort = given["orden"] or alert_queue.DEFAULT_SORT
    except ValueError:
        errors["orden"] = N_("queue.error.choice")
    assignee = given["asignada"]
    p.filter = alert_queue.QueueFilter(
        status=status,
        entity_id=entity_id if entity_fixed else (given["entidad"] or None),
        sensor=given["sensor"] or None,
        kind=kind,
        severity=severity,
        received_from=dates["recibida_desde"],
        received_to=dates["recibida_hasta"] if "recibida_hasta" not in errors else None,
        seen_from=dates["vista_desde"],
        seen_to=dates["vista_hasta"] if "vista_hasta" not in errors else None,
        text=given["q"] or None,
        assignee="" if assignee == NOBODY else (assignee or None),
        hide_tlp=hide_tlp,
    )
    return p


def from_query(query: str, entity_id: str | None, hide_tlp: tuple[str, ...], fixed: bool) -> Params:
    """The filters from a query string (a form's `volver` field): unknown names dropped."""
    pairs = {k: v for k, v in parse_qsl(query[:4000]) if k in FIELDS}
    return read(pairs, entity_id, hide_tlp, fixed)
