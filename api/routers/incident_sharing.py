"""An incident's indicators pushed to the CERT's MISP (incidents.mispshare), by
CERT analysts: queued in the MISP outbox with an audit record, then sent at once;
what fails is sent again by the scheduler's MISP job."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.access import visible
from api.deps import Analyst, ServicesDep
from api.inputs import Id
from api.schemas.incidents import ShareOut
from correlator import misp
from incidents import mispshare

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@router.post("/{incident_id}/share/misp", status_code=202, response_model=ShareOut)
def share_misp(incident_id: Id, principal: Analyst, services: ServicesDep) -> ShareOut:
    """Queue the incident's shareable indicators as a MISP event and try to send it now
    (202 either way: `status` says whether it landed)."""
    server = misp.server(services.settings)
    if server is None:
        raise HTTPException(409, "no MISP configured (VIGIA_MISP_URL, VIGIA_MISP_KEY_FILE)")
    with services.db.transaction() as session:
        inc = visible(session, principal, incident_id)
        row = mispshare.enqueue(session, inc, services.settings.observer_name, principal.actor)
        share_id = row.id
    mispshare.deliver_waiting(services.db, server, [share_id])
    with services.db.transaction(write=False) as session:
        done = mispshare.get(session, share_id)
        assert done is not None
        event = done.payload["Event"]
        return ShareOut(
            id=done.id,
            incident_id=done.incident_id,
            event_uuid=done.event_uuid,
            distribution=event["distribution"],
            attributes=len(event["Attribute"]),
            status=done.status,  # type: ignore[arg-type]
            attempts=done.attempts,
            last_error=done.last_error,
        )
