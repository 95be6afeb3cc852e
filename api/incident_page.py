"""What the console's incident page shows beside the incident itself (issue 15): its
SLA clocks, related incidents, who a notice would reach, the analysts it can be
given to, the actions its state allows, and where a refusal is shown.

Everything is read through the incidents package (no query here); this module only
puts it together for the template."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from api.services import Services
from core.clock import utcnow
from core.errors import CodedError
from incidents import notify, owners, related, sla
from incidents.models import IncidentRow
from incidents.views import Viewer, entities

# The message shown after a save, by the word in ?hecho= (a fixed list: nothing the
# address carries is shown as it is).
DONE = {
    "estado": "inc.done.status",
    "cerrado": "inc.done.closed",
    "guardado": "inc.done.saved",
    "asignado": "inc.done.assigned",
    "nota": "inc.done.note",
    "tarea": "inc.done.task",
    "notificado": "inc.done.notified",
    "acuse": "inc.done.ack",
    "respuesta": "inc.done.reply",
}

# A refusal's code → the field it concerns (the error is shown beside it); a code not
# here is shown at the top of its form.
FIELD_OF = {
    "incident.resolution_needed": "resolution",
    "incident.resolution_early": "resolution",
    "incident.resolution_unexpected": "resolution",
    "incident.transition": "to",
    "incident.state_invalid": "to",
    "incident.title_missing": "title",
    "incident.tlp_invalid": "tlp",
    "incident.pap_invalid": "pap",
    "incident.ncciss_invalid": "ncciss",
    "rsit.type_without_class": "rsit",
    "rsit.class_invalid": "rsit",
    "rsit.type_invalid": "rsit",
    "note.empty": "body",
    "reply.empty": "body",
    "task.title_missing": "title",
    "incident.owner_unknown": "owner",
}
STALE = ("incident.stale", "incident.changed_meanwhile")


@dataclass(frozen=True)
class Refused:
    """A refused form: which form, the field at fault (`at`; "" for the whole form), the
    reason in the reader's language, and what the person had typed (kept)."""

    form: str
    reason: str
    at: str = ""
    draft: dict[str, Any] = field(default_factory=dict)
    stale: bool = False


def field_of(exc: Exception) -> tuple[str, bool]:
    code = exc.code if isinstance(exc, CodedError) else ""
    stale = code in STALE or type(exc).__name__ == "StaleDataError"
    return FIELD_OF.get(code, ""), stale


def duration(minutes: int) -> str:
    """ "2 d 3 h", "3 h 5 min", "12 min" (the units read alike in Spanish and English)."""
    days, rest = divmod(max(minutes, 0), 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def _clocks(inc: IncidentRow, ents: list[Any], staff: bool) -> list[dict[str, Any]]:
    out = []
    for c in sla.clocks(inc, ents, utcnow()):
        if staff or c["clock"] == "entity_reply":
            out.append({**c, "left": duration(int(str(c["minutes"])))})
    return out


def extras(session: Session, services: Services, inc: IncidentRow, v: Viewer) -> dict[str, Any]:
    """The page's context beside `inc` (incidents.views.detail)."""
    ents = entities(session, [inc.id])[inc.id]
    if not v.staff:
        ents = [e for e in ents if e.entity_id == v.entity_id]
    open_ = inc.status not in ("closed",) and inc.merged_into is None
    return {
        "clocks": _clocks(inc, ents, v.staff),
        "related": related.related(session, inc.id, v.entity_id),
        "recipients": notify.recipients(session, services.contacts, inc.id) if v.staff else [],
        "analysts": owners.analysts(session) if v.staff else [],
        "can_work": v.staff and open_,  # edit, notify, tasks: not on a closed incident
        "notify_on_triage": services.settings.notify_on_triage,
    }
