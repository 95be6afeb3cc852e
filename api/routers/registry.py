"""The entity registry beyond the basics: CSV export and import, and the contacts
(security officers, webhook) that incident notices go to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, HTTPException
from fastapi.responses import Response
from pydantic import Field

from api.access import own_entity
from api.deps import Admin, Reader, ServicesDep, SessionDep, Staff
from api.inputs import Input, Name
from api.limits import RawBody
from certification import registry_csv
from certification.registry import Registry
from incidents import notify as notices
from vigia.core.tokens import Role

router = APIRouter(tags=["entities"])
MAX_CSV = 5 * 1024 * 1024


class Contact(Input):
    name: Name = Field(default="", max_length=200)
    email: Name = Field(default="", max_length=320)
    phone: Name = Field(default="", max_length=50)


class ContactsIn(Input):
    contacts: list[Contact] = Field(default=[], max_length=20)
    webhook_url: Name = Field(default="", max_length=500)
    webhook_secret: str = Field(default="", max_length=200)


@router.get("/api/v1/entities.csv")
def export_entities(session: SessionDep, principal: Staff) -> Response:
    return Response(
        registry_csv.export(session),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="entidades.csv"'},
    )


@router.post("/api/v1/entities/import")
def import_entities(body: RawBody, session: SessionDep, principal: Admin) -> dict[str, Any]:
    """The registry from CSV (the request body, with the export's columns)."""
    if len(body) > MAX_CSV:
        raise HTTPException(413, f"the CSV is limited to {MAX_CSV} bytes")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(422, "the CSV must be UTF-8") from None
    result = registry_csv.import_csv(session, text, principal.actor)
    return result.__dict__


@router.get("/api/v1/entities/{entity_id}/contacts")
def get_contacts(entity_id: str, session: SessionDep, principal: Reader) -> dict[str, Any]:
    own = own_entity(principal)
    if (own and own != entity_id) or Registry.get(session, entity_id) is None:
        raise HTTPException(404, f"no entity {entity_id}")
    contacts, url, _secret = Registry.contacts_of(session, entity_id)
    return {"contacts": contacts, "webhook_url": url}  # the secret never comes back


@router.put("/api/v1/entities/{entity_id}/contacts")
def put_contacts(
    entity_id: str,
    body: ContactsIn,
    session: SessionDep,
    principal: Reader,
    services: ServicesDep,
    later: BackgroundTasks,
) -> dict[str, Any]:
    """An admin, or the entity itself, sets where the CERT's notices go. A webhook must
    be a public https target (docs/security.md); when an entity changes its own, the
    CERT is told (an `entity.webhook` audit record and a mail to VIGIA_CERT_EMAIL)."""
    if principal.role is not Role.ADMIN and own_entity(principal) != entity_id:
        raise HTTPException(403, "only an admin or the entity itself sets its contacts")
    before = Registry.set_contacts(
        session,
        entity_id,
        [c.model_dump() for c in body.contacts],
        body.webhook_url,
        body.webhook_secret,
        principal.actor,
        services.webhook_targets,
    )
    if before is not None and principal.role is Role.ENTITY:
        s = services.settings
        later.add_task(  # after the response, so after the change committed
            notices.webhook_changed,
            services.mailer(),
            s.cert_email or s.smtp_from,
            entity_id,
            before,
            body.webhook_url,
            principal.actor,
        )
    return {"contacts": [c.model_dump() for c in body.contacts], "webhook_url": body.webhook_url}
