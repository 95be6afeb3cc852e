"""The entity's self-assessment in the console: controls by domain, one answer saved
at a time (a refused one is shown next to its control with what was typed, every
other answer kept), the score explained and the checklist before submitting;
afterwards the CERT's decision and comments control by control. Other roles are
told the page is for entities. The evidence files are console_evidence's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console_deps import EntityPageUser
from api.deps import ServicesDep, SessionDep
from api.inputs import Id
from api.limits import FormBody
from api.selfassess_page import HOME, EntityForm, drafts_of, save_posted, self_assessment, t
from certification import assessments

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=4000)]


@router.get(HOME, response_class=HTMLResponse)
def self_assessment_page(
    request: Request, session: SessionDep, services: ServicesDep, principal: EntityPageUser
) -> HTMLResponse:
    return self_assessment(request, session, services, principal)


@router.post(f"{HOME}/iniciar", response_class=HTMLResponse)
def start(f: EntityForm) -> Response:
    entity = str(f.principal.entity_id)
    return f.run(lambda: assessments.open_assessment(f.session, entity, f.principal.actor))


@router.post(f"{HOME}/{{assessment_id}}/controles/{{control_id}}", response_class=HTMLResponse)
def save_answer(
    f: EntityForm,
    assessment_id: Id,
    control_id: str,
    answer: Annotated[str, Form(max_length=20)] = "",
    justification: Text = "",
) -> Response:
    """One control's answer. Refused (no answer, «no aplica» without a reason), the page
    again with the reason next to this control and what was typed still in it."""
    a = f.assessment(assessment_id)
    cid = control_id[:40]

    def save() -> None:
        if not answer:
            raise HTTPException(422, t(f.request, "cert.choose_answer"))
        held = assessments.answers_of(f.session, a).get(cid)
        if held and held.answer == answer and held.justification == justification.strip():
            return  # unchanged: the CERT's verdict on it stays
        assessments.answer(f.session, a, cid, answer, justification, f.principal.actor)

    return f.run(save, cid, {"answer": answer, "justification": justification})


@router.post(f"{HOME}/{{assessment_id}}/respuestas", response_class=HTMLResponse)
def save_answers(f: EntityForm, assessment_id: Id, form: FormBody) -> Response:
    """The whole page's answers in one post, as a browser without JavaScript sends the
    form every control's inputs belong to (`control`, `answer`, `justification` once
    per control, in page order; `at`, the control whose button was pressed). Every
    changed answer is saved; those refused are shown next to their controls, and the
    page comes back with what was typed in every control, saved or not."""
    a = f.assessment(assessment_id)
    at = str(form.get("at", ""))[:40]
    saved = save_posted(f.request, f.session, a, form, f.principal.actor, at)
    if saved is None:  # not as the page sends it: pairs unknowable
        return f.page(t(f.request, "cert.form_incomplete"), 422)
    posted, errors, status = saved
    if not errors:
        return RedirectResponse(f"{HOME}#c-{at}" if at else HOME, status_code=303)
    return self_assessment(
        f.request,
        f.session,
        f.services,
        f.principal,
        None,
        status,
        next(iter(errors)),
        None,
        drafts_of(posted),
        errors,
    )


@router.post(
    f"{HOME}/{{assessment_id}}/evidencia/{{evidence_id}}/quitar", response_class=HTMLResponse
)
def remove_evidence(
    f: EntityForm,
    assessment_id: Id,
    evidence_id: Id,
    control_id: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    a = f.assessment(assessment_id)
    return f.run(
        lambda: assessments.remove_evidence(f.session, a, evidence_id, f.principal.actor),
        control_id,
    )


@router.post(f"{HOME}/{{assessment_id}}/enviar", response_class=HTMLResponse)
def submit(f: EntityForm, assessment_id: Id) -> Response:
    a = f.assessment(assessment_id)
    return f.run(lambda: assessments.submit(f.session, a, f.principal.actor))
