"""How the API and the console show a resource: one place per view, so that the
JSON answer (api.schemas) and the console page read the same fields."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.access import viewer
from api.schemas.certification import AssessmentOut
from api.schemas.incidents import IncidentDetail
from certification import assessments, catalogue
from certification.models import AssessmentRow, CertificateRow
from core.clock import iso, utcnow
from core.tokens import Principal
from incidents import views
from incidents.models import IncidentRow


def assessment_view(session: Session, a: AssessmentRow) -> dict[str, Any]:
    """An assessment with its score, and each control with the answer, the CERT's
    verdict and the evidence (api.schemas.certification.AssessmentOut)."""
    cat = catalogue.get(session, a.catalogue_version)
    today = utcnow().date()
    s = assessments.score_of(session, a, today)
    got = assessments.answers_of(session, a)
    ev: dict[str, list[dict[str, Any]]] = {}
    for e in assessments.evidence_of(session, a):
        ev.setdefault(e.control_id, []).append(
            {
                "id": e.id,
                "filename": e.filename,
                "media_type": e.media_type,
                "size": e.size,
                "sha256": e.sha256,
                "expires_on": e.expires_on.isoformat(),
                "expired": e.expires_on < today,
            }
        )
    return {
        "id": a.id,
        "entity_id": a.entity_id,
        "catalogue": a.catalogue_version,
        "status": a.status,
        "decision": a.decision,
        "decision_reasons": a.decision_reasons,
        "score": s.overall,
        "progress": round(s.progress, 4),
        "mandatory_unmet": s.mandatory_unmet,
        "unevidenced": s.unevidenced,
        "domains": [d.__dict__ for d in s.domains],
        "controls": [
            {
                "id": c.id,
                "domain": c.domain,
                "title": c.title,
                "objective": c.objective,
                "applicability": c.applicability,
                "guidance": c.guidance,
                "iso27001": list(c.iso27001),
                "cis_v8": list(c.cis_v8),
                "mandatory": c.mandatory,
                "answer": got[c.id].answer if c.id in got else None,
                "justification": got[c.id].justification if c.id in got else "",
                "review": got[c.id].review if c.id in got else None,
                "review_comment": got[c.id].review_comment if c.id in got else "",
                "evidence": ev.get(c.id, []),
            }
            for c in cat.controls
        ],
    }


def assessment_out(session: Session, a: AssessmentRow) -> AssessmentOut:
    return AssessmentOut.model_validate(assessment_view(session, a))


def certificate_out(c: CertificateRow) -> dict[str, Any]:
    return {
        "id": c.id,
        "entity_id": c.entity_id,
        "assessment_id": c.assessment_id,
        "level": c.level,
        "status": c.status,
        "score": c.score,
        "issued_at": iso(c.issued_at),
        "valid_until": iso(c.valid_until),
        "observation": c.observation or None,
        "reason": c.reason or None,
    }


def incident_detail(session: Session, inc: IncidentRow, principal: Principal) -> IncidentDetail:
    """The incident as this caller may read it (incidents.views: TLP and entity)."""
    return IncidentDetail.model_validate(views.detail(session, inc, viewer(principal)))
