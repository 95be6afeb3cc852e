"""The entity registry beyond the basics: CSV export and import, and the contacts
(security officers, webhook) that incident notices go to."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, HTTPException
from fastapi.responses import Response

from api.access import own_entity
from api.deps import Admin, Reader, ServicesDep, SessionDep, Staff
from api.limits import RawBody
from api.schemas.common import CSV
from api.schemas.registry import ContactOut, ContactsIn, ContactsOut, ImportOut
from api.uploads import text_body
from certification import registry_csv
from certification.registry import Registry
from core.tokens import Role
from incidents import notify as notices

router = APIRouter(tags=["entities"])
MAX_CSV = 5 * 1024 * 1024


@router.get("/api/v1/entities.csv", response_class=Response, responses=CSV)
def export_entities(session: SessionDep, principal: Staff) -> Response:
    return Response(
        registry_csv.export(session),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="entidades.csv"'},
    )


@router.post("/api/v1/entities/import", response_model=ImportOut)
def import_entities(body: RawBody, session: SessionDep, principal: Admin) -> ImportOut:
    """The registry from CSV (the request body, with the export's columns)."""
    text = text_body(body, MAX_CSV, "utf-8-sig", "the CSV")
    result = registry_csv.import_csv(session, text, principal.actor)
    return ImportOut(**result.__dict__)


@router.get("/api/v1/entities/{entity_id}/contacts", response_model=ContactsOut)
def get_contacts(entity_id: str, session: SessionDep, principal: Reader) -> ContactsOut:
    own = own_entity(principal)
    if (own and own != entity_id) or Registry.get(session, entity_id) is None:
        raise HTTPException(404, f"no entity {entity_id}")
    contacts, url, _secret = Registry.contacts_of(session, entity_id)
    # the secret never comes back
    return ContactsOut(contacts=[ContactOut(**c) for c in contacts], webhook_url=url)


@router.put("/api/v1/entities/{entity_id}/contacts", response_model=ContactsOut)
def put_contacts(
    entity_id: str,
    body: ContactsIn,
    session: SessionDep,
    principal: Reader,
    services: ServicesDep,
    later: BackgroundTasks,
) -> ContactsOut:
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
            services.mailer,
            s.cert_email or s.smtp_from,
            entity_id,
            before,
            body.webhook_url,
            principal.actor,
        )
    contacts = [ContactOut(**c.model_dump()) for c in body.contacts]
    return ContactsOut(contacts=contacts, webhook_url=body.webhook_url)
