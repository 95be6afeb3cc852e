"""The CERT's review in the console: per control the entity's answer, its evidence
(shown where the type allows, with hashes) and the reviewer's verdict and comment,
saved one at a time (a rejection without a comment: the reason next to it, nothing
lost); the decision previewed by the policy (outcome and why) before it is
confirmed, or the certificate refused with a reason; the documents to download."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api.cert_views import worksheet
from api.console_deps import AnalystUser, StaffPage, StaffUser, page, run_form
from api.deps import ServicesDep, SessionDep
from api.errors import REFUSED, refusal
from api.inputs import Id
from api.limits import FormBody
from api.services import Services
from certification import assessments, standing
from certification.models import AssessmentRow
from certification.registry import Registry
from core.clock import utcnow
from core.tokens import Principal

router = APIRouter(include_in_schema=False)
BASE = "/console/revisiones"
Text = Annotated[str, Form(max_length=4000)]


@router.get(BASE, response_class=HTMLResponse)
def reviews(c: StaffPage) -> HTMLResponse:
    return c.page("reviews.html", rows=standing.awaiting_review(c.session))


@dataclass(frozen=True)
class ReviewForm:
    """An assessment under review, read by the CERT's staff, or an analyst's form on it."""

    request: Request
    session: Session
    services: Services
    principal: Principal
    assessment: AssessmentRow

    def page(
        self,
        name: str = "review.html",
        error: str | None = None,
        status: int = 200,
        at: str = "",
        draft: dict[str, str] | None = None,
    ) -> HTMLResponse:
        """The review page (or the decision's, `name`); `error` beside control `at`,
        with what was chosen and typed there (`draft`)."""
        session, a = self.session, self.assessment
        return page(
            self.request,
            name,
            http_status=status,
            **worksheet(session, self.services, a),
            entity=Registry.get(session, a.entity_id),
            principal=self.principal,
            error=error,
            at=at,
            draft=draft or {},
        )

    def run(
        self,
        action: Callable[[], object],
        at: str = "",
        draft: dict[str, str] | None = None,
        back: str = "",
        page_name: str = "review.html",
    ) -> Response:
        a = self.assessment

        def again(reason: str, status: int) -> Response:
            return self.page(page_name, reason, status, at, draft)

        target = back or (f"{BASE}/{a.id}#c-{at}" if at else f"{BASE}/{a.id}")
        return run_form(self.request, self.session, action, target, again)


def _reviewing(
    request: Request,
    assessment_id: Id,
    session: SessionDep,
    services: ServicesDep,
    principal: StaffUser,
) -> ReviewForm:
    return ReviewForm(
        request, session, services, principal, assessments.get(session, assessment_id)
    )


Reviewing = Annotated[ReviewForm, Depends(_reviewing)]


def _review_form(_: AnalystUser, r: Reviewing) -> ReviewForm:
    # The role first: another role is refused before the assessment is looked up.
    return r


Review = Annotated[ReviewForm, Depends(_review_form)]


@router.get(f"{BASE}/{{assessment_id}}", response_class=HTMLResponse)
def review_page(r: Reviewing) -> HTMLResponse:
    return r.page()


@router.get(f"{BASE}/{{assessment_id}}/decision", response_class=HTMLResponse)
def decision_preview(r: Review) -> HTMLResponse:
    """What the policy would decide now, and why, before the reviewer confirms."""
    return r.page("decision.html")


@router.post(f"{BASE}/{{assessment_id}}/controles/{{control_id}}", response_class=HTMLResponse)
def save_verdict(
    r: Review,
    control_id: str,
    verdict: Annotated[str, Form(max_length=10)] = "",
    comment: Text = "",
) -> Response:
    """One control's verdict; a rejection without a comment is shown next to it, with
    what was chosen and typed, every other verdict as it was."""
    cid = control_id[:40]
    return r.run(
        lambda: assessments.review(
            r.session, r.assessment, cid, verdict, comment, r.principal.actor
        ),
        cid,
        {"verdict": verdict, "comment": comment},
    )


@router.post(f"{BASE}/{{assessment_id}}/veredictos", response_class=HTMLResponse)
def save_verdicts(r: Review, form: FormBody) -> Response:
    """verdict_<control> and comment_<control> for several controls: each valid one is
    saved, the first refused shown next to its control."""
    refused: list[tuple[str, Exception]] = []
    for key, value in form.multi_items():
        if key.startswith("verdict_") and value:
            cid = key.removeprefix("verdict_")
            comment = str(form.get(f"comment_{cid}", ""))
            try:  # a verdict is checked before anything changes
                assessments.review(
                    r.session, r.assessment, cid, str(value), comment, r.principal.actor
                )
            except REFUSED as exc:
                refused.append((cid, exc))
    a = r.assessment
    if not refused:
        return RedirectResponse(f"{BASE}/{a.id}", status_code=303)
    cid, first = refused[0]
    status, reason = refusal(r.request, first)
    draft = {
        "verdict": str(form.get(f"verdict_{cid}", "")),
        "comment": str(form.get(f"comment_{cid}", "")),
    }
    return r.page(error=reason, status=status, at=cid, draft=draft)


@router.post(f"{BASE}/{{assessment_id}}/devolver", response_class=HTMLResponse)
def give_back(r: Review, comment: Text = "") -> Response:
    return r.run(
        lambda: assessments.return_to_entity(r.session, r.assessment, comment, r.principal.actor)
    )


@router.post(f"{BASE}/{{assessment_id}}/decidir", response_class=HTMLResponse)
def decide(r: Review) -> Response:
    """The policy's decision, as the preview showed it: a certificate when it passes."""
    return r.run(
        lambda: assessments.decide(
            r.session,
            r.assessment,
            r.services.cert_policy,
            r.services.open_incidents,
            r.principal.actor,
            utcnow(),
        ),
        page_name="decision.html",
    )


@router.post(f"{BASE}/{{assessment_id}}/denegar", response_class=HTMLResponse)
def refuse(r: Review, reason: Text = "") -> Response:
    """No certificate, whatever the policy would give; the reason is for the entity."""
    return r.run(
        lambda: assessments.refuse(r.session, r.assessment, reason, r.principal.actor, utcnow()),
        draft={"reason": reason},
        page_name="decision.html",
    )
