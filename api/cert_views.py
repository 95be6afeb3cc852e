"""What the self-assessment and review pages show: the assessment as the API reads
it (api.presenters), grouped by domain, with the score explained control by
control (certification.explain) and the documents there are to download."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.presenters import assessment_view
from api.services import Services
from certification import explain, standing
from certification.models import AssessmentRow
from core.clock import utcnow

# Evidence a browser can show in the page or its own tab (never HTML or SVG).
INLINE = ("image/png", "image/jpeg", "application/pdf", "text/plain", "text/csv")
# Types a browser may run script in: never shown, not even as an <img>.
SCRIPTABLE = ("text/html", "application/xhtml+xml", "text/xml", "application/xml")


def scriptable(media_type: str) -> bool:
    m = media_type.lower()
    return m in SCRIPTABLE or m.endswith("+xml") or "javascript" in m


def worksheet(session: Session, services: Services, a: AssessmentRow) -> dict[str, Any]:
    """The assessment with, per control, how it counts and what to fix, and the
    controls grouped by domain with each domain's progress."""
    view = assessment_view(session, a)
    ex = explain.explain(session, a, services.cert_policy, services.open_incidents, utcnow())
    for c in view["controls"]:
        c["counted"] = ex.counted[c["id"]]
        c["fixes"] = ex.fixes.get(c["id"], [])
        for e in c["evidence"]:
            e["expiring"] = ex.expiring.get(e["id"], False)
            e["inline"] = e["media_type"] in INLINE
            e["image"] = e["inline"] and e["media_type"].startswith("image/")
    by_domain: dict[str, list[dict[str, Any]]] = {}
    for c in view["controls"]:
        by_domain.setdefault(c["domain"], []).append(c)
    view["groups"] = [
        {**d, "id": d["domain"], "controls": by_domain.get(d["domain"], [])}
        for d in view["domains"]
    ]
    cert = standing.certificate_of(session, a.id)
    view["certificate"] = cert.id if cert else None
    return {"a": view, "ex": ex, "policy": services.cert_policy}
