"""The entity's evidence files in the console: attached per control (several at once,
or dropped onto it), replaced, kept from the round before, and shown in the
browser's own viewer where their type allows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from functools import partial
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from api.access import own_entity
from api.cert_views import INLINE, scriptable
from api.console_deps import ConsoleUser, EntityPageUser
from api.deps import ServicesDep, SessionDep
from api.errors import REFUSED, refusal
from api.inputs import Id
from api.limits import FormBody
from api.selfassess_page import HOME, drafts_of, save_posted, self_assessment, t
from api.services import Services
from api.uploads import evidence_limits, read_upload
from certification import assessments, attach, evidence
from core.tokens import Principal

router = APIRouter(include_in_schema=False)


def _expiry(request: Request, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, t(request, "error.no_expiry")) from None


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
            f, services.settings.evidence_max_bytes, "evidencia", t(request, "error.no_file")
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
        saved = save_posted(request, session, a, form, principal.actor, "")
    if saved is None:
        with services.db.transaction(write=False) as session:
            reason = t(request, "cert.form_incomplete")
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
    first, drafts = next(iter(errors)), drafts_of(posted)
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
        raise HTTPException(404, t(request, "error.no_evidence"))
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
