"""The entity's self-assessment page as its forms answer it: the page built (what
was typed kept beside a refused control), the form object the page's routes share,
and the page-wide answers form saved. Used by the routers console_selfassess (the
answers) and console_evidence (the files)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from api.cert_views import worksheet
from api.console_deps import EntityPageUser, page, run_form
from api.deps import ServicesDep, SessionDep
from api.errors import REFUSED, refusal, request_lang
from api.i18n import text
from api.services import Services
from certification import assessments, attach, certificates, standing
from certification.models import AssessmentRow, EvidenceRow
from certification.registry import Registry
from core.clock import utcnow
from core.tokens import Principal

HOME = "/console/autoevaluacion"


def self_assessment(
    request: Request,
    session: Session,
    services: Services,
    principal: Principal,
    error: str | None = None,
    status: int = 200,
    at: str = "",
    draft: dict[str, str] | None = None,
    drafts: dict[str, dict[str, str]] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    """The page; `error` shown next to control `at` (or on top), with `draft` (the
    answer and justification as typed) in that control's inputs; `drafts` and
    `errors` the same for several controls (the whole form posted at once)."""
    entity = str(principal.entity_id)
    a = standing.newest_assessment(session, entity)
    cert = standing.newest_certificate(session, entity)
    drafts = dict(drafts or {})
    carried: set[str] = set()
    previous: dict[str, list[EvidenceRow]] = {}
    if a is not None and a.status in assessments.EDITABLE:
        previous = attach.previous_evidence(session, a, utcnow().date())
        # A new round starts from the last one's answers, in the inputs but not saved
        # until the entity saves them (each control's button, or the page's).
        held = assessments.answers_of(session, a)
        for cid, r in assessments.previous_answers(session, a).items():
            if cid not in held and cid not in drafts and cid != at:
                drafts[cid] = {"answer": r.answer, "justification": r.justification}
                carried.add(cid)
    return page(
        request,
        "assessment.html",
        http_status=status,
        **(worksheet(session, services, a) if a else {"a": None}),
        state=certificates.state_of(cert, a, utcnow()),
        cert=cert,
        entity=Registry.get(session, entity),
        principal=principal,
        error=error,
        at=at,
        draft=draft or {},
        drafts=drafts,
        carried=carried,
        previous=previous,
        errors=errors or {},
        expiry=date.today().replace(year=date.today().year + 1).isoformat(),
        today=date.today().isoformat(),
    )


@dataclass(frozen=True)
class SelfAssessForm:
    """A form the entity posts from its self-assessment page: done, back to the page
    (at the control); refused, the page again with the reason beside the control."""

    request: Request
    session: Session
    services: Services
    principal: Principal

    def assessment(self, assessment_id: int) -> AssessmentRow:
        return assessments.get(self.session, assessment_id, self.principal.entity_id)

    def page(
        self, error: str, status: int, at: str = "", draft: dict[str, str] | None = None
    ) -> HTMLResponse:
        return self_assessment(
            self.request, self.session, self.services, self.principal, error, status, at, draft
        )

    def run(
        self, action: Callable[[], object], at: str = "", draft: dict[str, str] | None = None
    ) -> Response:
        def again(reason: str, status: int) -> Response:
            return self.page(reason, status, at, draft)

        back = f"{HOME}#c-{at}" if at else HOME
        return run_form(self.request, self.session, action, back, again)


def _entity_form(
    request: Request, session: SessionDep, services: ServicesDep, principal: EntityPageUser
) -> SelfAssessForm:
    return SelfAssessForm(request, session, services, principal)


EntityForm = Annotated[SelfAssessForm, Depends(_entity_form)]


Posted = list[tuple[str, str, str]]


def save_posted(
    request: Request, session: Session, a: AssessmentRow, form: Any, actor: str, at: str
) -> tuple[Posted, dict[str, str], int] | None:
    """The page-wide form's answers saved: every changed one; (what was posted, the
    refusals by control, the first refusal's status). None when the form is not as
    the page sends it (control, answer and justification not once per control)."""
    columns = [form.getlist(k) for k in ("control", "answer", "justification")]
    if len({len(c) for c in columns}) > 1:
        return None
    posted = [(str(c)[:40], str(v)[:20], str(j)[:4000]) for c, v, j in zip(*columns, strict=True)]
    current = assessments.answers_of(session, a)
    errors: dict[str, str] = {}
    status = 200
    for cid, value, just in posted:
        held = current.get(cid)
        try:  # an answer is checked before anything changes: a refusal undoes nothing
            if not value:
                if cid == at:  # the button pressed beside a control left without answer
                    raise HTTPException(422, t(request, "cert.choose_answer"))
                continue
            if held and held.answer == value and held.justification == just.strip():
                continue  # unchanged: the CERT's verdict on it stays
            assessments.answer(session, a, cid, value, just, actor)
        except REFUSED as exc:
            code, errors[cid] = refusal(request, exc)
            status = code if status == 200 else status  # the first refusal's
    return posted, errors, status


def drafts_of(posted: Posted) -> dict[str, dict[str, str]]:
    return {cid: {"answer": value, "justification": just} for cid, value, just in posted}


def t(request: Request, key: str) -> str:
    return text(request_lang(request), key)
