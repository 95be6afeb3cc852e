"""The entity's self-assessment in the console: controls by domain, one answer saved
at a time (a refused one is shown next to its control with what was typed, every
other answer kept), evidence attached, replaced and removed per control, the score
explained and the checklist before submitting; afterwards the CERT's decision and
comments control by control. Other roles are told the page is for entities."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from api.access import own_entity
from api.cert_views import INLINE, scriptable, worksheet
from api.console_deps import ConsoleUser, EntityPageUser, page, run_form
from api.deps import ServicesDep, SessionDep
from api.errors import REFUSED, refusal, request_lang
from api.i18n import text
from api.inputs import Id
from api.limits import FormBody
from api.services import Services
from api.uploads import evidence_limits, read_upload
from certification import assessments, attach, certificates, evidence, standing
from certification.models import AssessmentRow, EvidenceRow
from certification.registry import Registry
from core.clock import utcnow
from core.tokens import Principal

router = APIRouter(include_in_schema=False)
HOME = "/console/autoevaluacion"
Text = Annotated[str, Form(max_length=4000)]


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
            raise HTTPException(422, _t(f.request, "cert.choose_answer"))
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
    saved = _save_posted(f.request, f.session, a, form, f.principal.actor, at)
    if saved is None:  # not as the page sends it: pairs unknowable
        return f.page(_t(f.request, "cert.form_incomplete"), 422)
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
        _drafts(posted),
        errors,
    )


Posted = list[tuple[str, str, str]]


def _save_posted(
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
                    raise HTTPException(422, _t(request, "cert.choose_answer"))
                continue
            if held and held.answer == value and held.justification == just.strip():
                continue  # unchanged: the CERT's verdict on it stays
            assessments.answer(session, a, cid, value, just, actor)
        except REFUSED as exc:
            code, errors[cid] = refusal(request, exc)
            status = code if status == 200 else status  # the first refusal's
    return posted, errors, status


def _drafts(posted: Posted) -> dict[str, dict[str, str]]:
    return {cid: {"answer": value, "justification": just} for cid, value, just in posted}


def _expiry(request: Request, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, _t(request, "error.no_expiry")) from None


@router.post(f"{HOME}/{{assessment_id}}/evidencia", response_class=HTMLResponse)
def upload_evidence(
    request: Request,
    assessment_id: Id,
    principal: EntityPageUser,
    services: ServicesDep,
    form: FormBody,
) -> Response:
    """The control's file(s), each attached as the API's upload is (certification.attach:
    no transaction held while a file is checked and stored); `replaces` names an
    evidence file of the same control that the new one takes the place of. Posted
    by a control's «Adjuntar» button without JavaScript, this is the page-wide
    answers form (`adjuntar`: that control): see _attach_with_answers."""
    if form.get("adjuntar"):
        return _attach_with_answers(request, assessment_id, principal, services, form)
    cid = str(form.get("control_id", ""))[:40]
    replaces = str(form.get("replaces", "") or "")
    try:
        _attach_files(
            request,
            services,
            principal,
            assessment_id,
            cid,
            form.getlist("file"),
            str(form.get("expires_on", "")),
            int(replaces) if replaces.isdigit() else None,
        )
    except REFUSED as exc:  # the page again, read in a transaction of its own
        status, reason = refusal(request, exc)
        with services.db.transaction(write=False) as session:
            return self_assessment(request, session, services, principal, reason, status, cid)
    return RedirectResponse(f"{HOME}#c-{cid}", status_code=303)


def _attach_files(
    request: Request,
    services: Services,
    principal: Principal,
    assessment_id: int,
    cid: str,
    files: list[Any],
    expires_on: str,
    replaces: int | None,
) -> None:
    expires = _expiry(request, expires_on)
    for i, f in enumerate(files or [None]):
        upload = read_upload(
            f, services.settings.evidence_max_bytes, "evidencia", _t(request, "error.no_file")
        )
        attach.attach(
            services.db,
            evidence_limits(services),
            assessment_id,
            principal.entity_id,
            cid,
            upload,
            expires,
            principal.actor,
            replaces if i == 0 else None,
        )


def _chosen(form: Any, cid: str) -> list[Any]:
    """The files chosen in a control's input (a browser sends an empty part for an
    input left without one)."""
    return [f for f in form.getlist(f"file-{cid}") if isinstance(f, UploadFile) and f.filename]


def _attach_with_answers(
    request: Request, assessment_id: int, principal: Principal, services: Services, form: Any
) -> Response:
    """Without JavaScript, a control's «Adjuntar» posts the whole answers form
    (multipart): the files chosen in each control (`file-ID`, valid until
    `expires_on-ID`) are attached after the answers are saved; the pressed
    control's with none is refused."""
    by = str(form.get("adjuntar", ""))[:40]
    steps = []
    for cid in dict.fromkeys([*(str(c)[:40] for c in form.getlist("control")), by]):
        files, expires = _chosen(form, cid), str(form.get(f"expires_on-{cid}", ""))
        if files or cid == by:
            steps.append(
                (
                    cid,
                    partial(
                        _attach_files,
                        request,
                        services,
                        principal,
                        assessment_id,
                        cid,
                        files,
                        expires,
                        None,
                    ),
                )
            )
    return _answers_then(request, assessment_id, principal, services, form, by, steps)


def _answers_then(
    request: Request,
    assessment_id: int,
    principal: Principal,
    services: Services,
    form: Any,
    by: str,
    steps: Sequence[tuple[str, Callable[[], object]]],
) -> Response:
    """A button of the answers form that does more than save: every changed answer
    is saved as the page's save does, then each (control, step) is run. Refusals
    come back beside their controls with what was typed in every control; done,
    back to control `by`."""
    with services.db.transaction() as session:
        a = assessments.get(session, assessment_id, principal.entity_id)
        saved = _save_posted(request, session, a, form, principal.actor, "")
    if saved is None:
        with services.db.transaction(write=False) as session:
            reason = _t(request, "cert.form_incomplete")
            return self_assessment(request, session, services, principal, reason, 422)
    posted, errors, status = saved
    for cid, step in steps:
        try:
            step()
        except REFUSED as exc:
            code, errors[cid] = refusal(request, exc)
            status = code if status == 200 else status
    if not errors:
        return RedirectResponse(f"{HOME}#c-{by}", status_code=303)
    first, drafts = next(iter(errors)), _drafts(posted)
    with services.db.transaction(write=False) as session:
        return self_assessment(
            request, session, services, principal, None, status, first, None, drafts, errors
        )


@router.post(f"{HOME}/{{assessment_id}}/controles/{{control_id}}/conservar")
def keep_previous_evidence(
    request: Request,
    assessment_id: Id,
    control_id: str,
    principal: EntityPageUser,
    services: ServicesDep,
    form: FormBody,
) -> Response:
    """«Conservar»: the control's still-valid evidence of the round before kept in
    this one by reference (certification.attach.keep_previous). A button of the
    answers form: without JavaScript every typed answer is saved with it."""
    cid = control_id[:40]

    def keep() -> None:
        with services.db.transaction() as session:
            a = assessments.get(session, assessment_id, principal.entity_id)
            attach.keep_previous(session, a, cid, principal.actor)

    return _answers_then(request, assessment_id, principal, services, form, cid, [(cid, keep)])


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


@router.get("/console/evidencia/{evidence_id}", response_class=FileResponse)
def view_evidence(
    request: Request,
    evidence_id: Id,
    session: SessionDep,
    services: ServicesDep,
    principal: ConsoleUser,
) -> FileResponse:
    """An evidence file in the browser's own viewer where its type allows (PDF, image,
    text as plain text); others are downloaded. An entity sees only its own. The
    console's headers stay on it (CSP default-src 'none', nosniff): Chromium's PDF
    viewer renders under them (tests/test_console_cert_browser.py). A type that can
    carry script (HTML, SVG, XML), should the installation accept one, is never
    shown: sent as bytes to download (application/octet-stream)."""
    ev = attach.evidence_file(session, evidence_id, own_entity(principal))
    if ev is None:
        raise HTTPException(404, _t(request, "error.no_evidence"))
    inline = ev.media_type in INLINE
    if inline:
        media = "text/plain; charset=utf-8" if ev.media_type.startswith("text/") else ev.media_type
    else:
        media = "application/octet-stream" if scriptable(ev.media_type) else ev.media_type
    return FileResponse(
        evidence.path_of(services.evidence_dir, ev.sha256),
        media_type=media,
        filename=ev.filename,
        content_disposition_type="inline" if inline else "attachment",
    )


def _t(request: Request, key: str) -> str:
    return text(request_lang(request), key)
