"""An incident's indicators out to the CERT's MISP, as an event (pymisp).

The event is incidents.export's, narrowed to what may leave: no TLP:RED (the
incident or an attribute), no network-connection objects (they name the
constituency's hosts), and the distribution and sharing group of its TLP as
incidents/vocab/sharing.json says (a stricter attribute gets its own). The
request writes the event to an outbox row in the same transaction as its audit
record; delivery (at once, and by the MISP job for what failed) adds the event,
or edits it when MISP already holds its UUID, and resolves the sharing group's
name on that MISP; a group it does not know falls back to the stricter
distribution the data gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from core.db import Database
from incidents import export, sharing
from incidents.errors import Conflict
from incidents.models import IncidentRow, MispShareRow
from rules.indicator import TLP_LEVELS
from rules.sources.mispsync import MispServer, SyncError

MAX_ATTEMPTS = 20
INHERIT = 5  # MISP: an attribute inherits its event's distribution
SHARING_GROUP = 4


def _distribution(tlp: str) -> dict[str, Any]:
    d = sharing.misp_distribution(tlp)
    assert d is not None  # callers drop what may not leave first
    out: dict[str, Any] = {"distribution": d.distribution}
    if d.distribution == SHARING_GROUP:
        out["vigia_sharing_group"] = d.sharing_group or ""
        out["vigia_fallback"] = d.fallback
    return out


def event_for(session: Session, inc: IncidentRow, cert: str) -> dict[str, Any]:
    """The MISP event to push; Conflict when nothing of it may leave."""
    if sharing.misp_distribution(inc.tlp) is None:
        raise Conflict("share.tlp_kept", tlp=inc.tlp.upper())
    if inc.merged_into is not None or inc.resolution in sharing.unshared_resolutions():
        raise Conflict("share.not_shared")
    doc = export.to_misp(session, inc, cert)
    event = doc["Event"]
    event.pop("Object", None)  # alerts name the constituency's hosts: they stay home
    event.update(_distribution(inc.tlp))
    kept = []
    for attr in event.get("Attribute", []):
        tags = [t["name"] for t in attr.get("Tag", [])]
        own = next((t.removeprefix("tlp:") for t in tags if t.startswith("tlp:")), inc.tlp)
        tlp = sharing.stricter(own, inc.tlp) if own in TLP_LEVELS else inc.tlp
        if sharing.misp_distribution(tlp) is None:
            continue
        # Tagged with the TLP it leaves under; a stricter one than the event's
        # gets its own distribution.
        attr["Tag"] = [t for t in attr.get("Tag", []) if not t["name"].startswith("tlp:")]
        attr["Tag"].append({"name": f"tlp:{tlp}"})
        if tlp == inc.tlp:
            attr["distribution"] = INHERIT
        else:
            attr.update(_distribution(tlp))
        kept.append(attr)
    if not kept:
        raise Conflict("share.nothing")
    event["Attribute"] = kept
    return doc


def enqueue(session: Session, inc: IncidentRow, cert: str, actor: str) -> MispShareRow:
    doc = event_for(session, inc, cert)
    row = MispShareRow(
        incident_id=inc.id,
        event_uuid=doc["Event"]["uuid"],
        requested_by=actor,
        status="pending",
        attempts=0,
        last_error="",
        created_at=utcnow(),
        payload=doc,
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor,
        "incident.share.misp",
        "incident",
        str(inc.id),
        {
            "share": row.id,
            "event_uuid": row.event_uuid,
            "distribution": doc["Event"]["distribution"],
            "attributes": len(doc["Event"]["Attribute"]),
        },
    )
    return row


def get(session: Session, share_id: int) -> MispShareRow | None:
    return session.get(MispShareRow, share_id)


def pending(session: Session, ids: Sequence[int] = (), limit: int = 100) -> list[MispShareRow]:
    q = select(MispShareRow).where(
        MispShareRow.status == "pending", MispShareRow.attempts < MAX_ATTEMPTS
    )
    if ids:
        q = q.where(MispShareRow.id.in_(ids))
    return list(session.execute(q.order_by(MispShareRow.id).limit(limit)).scalars())


def deliver(
    session: Session,
    connect: Callable[[], Callable[[dict[str, Any]], None]],
    ids: Sequence[int] = (),
) -> tuple[int, int]:
    """Send what is pending (these rows only, when given) through `connect()`'s
    sender; a MISP that cannot be reached leaves its reason on every row.
    Returns (sent, failed)."""
    rows = pending(session, ids)
    if not rows:
        return 0, 0
    try:
        send = connect()
    except Exception as exc:
        for row in rows:
            _failed(row, exc)
        return 0, len(rows)
    sent = failed = 0
    for row in rows:
        try:
            send(row.payload)
        except Exception as exc:  # any failure: the row waits for the next run
            _failed(row, exc)
            failed += 1
            continue
        row.attempts += 1
        row.status, row.sent_at, row.last_error = "sent", utcnow(), ""
        sent += 1
    return sent, failed


def _failed(row: MispShareRow, exc: Exception) -> None:
    row.attempts += 1
    row.last_error = (str(exc).splitlines() or [type(exc).__name__])[0][:500]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = "failed"


def event_sender(server: MispServer) -> Callable[[dict[str, Any]], None]:
    """A `send(event doc)` on one pymisp session: add, or edit what MISP holds."""
    from pymisp import MISPEvent, PyMISP, PyMISPError

    try:
        misp = PyMISP(
            server.url, server.key, ssl=server.verify_tls, timeout=server.timeout_s, tool="vigia"
        )
    except (PyMISPError, OSError) as exc:
        raise SyncError(f"{server.url}: {str(exc).splitlines()[0]}") from None
    groups: dict[str, int] | None = None

    def group_ids() -> dict[str, int]:
        nonlocal groups
        if groups is None:
            found: Any = misp.sharing_groups()
            if isinstance(found, dict) and found.get("errors"):
                raise SyncError(f"{server.url}: sharing groups: {found['errors']}")
            groups = {}
            for g in found if isinstance(found, list) else []:
                sg = g.get("SharingGroup", g)
                groups[str(sg.get("name", ""))] = int(sg["id"])
        return groups

    def place(part: dict[str, Any]) -> None:
        name = part.pop("vigia_sharing_group", None)
        fallback = part.pop("vigia_fallback", 0)
        if name is None:
            return
        gid = group_ids().get(name)
        if gid is None:
            part["distribution"] = fallback
        else:
            part["sharing_group_id"] = gid

    def send(doc: dict[str, Any]) -> None:
        body = dict(doc["Event"])
        body["Attribute"] = [dict(a) for a in body.get("Attribute", [])]
        place(body)
        for attr in body["Attribute"]:
            place(attr)
        event = MISPEvent()
        event.from_dict(**body)
        if misp.event_exists(body["uuid"]):
            answer: Any = misp.update_event(event, event_id=body["uuid"])
        else:
            answer = misp.add_event(event)
        if isinstance(answer, dict) and answer.get("errors"):
            raise SyncError(f"{server.url}: {answer['errors']}")

    return send


def deliver_waiting(db: Database, server: MispServer, ids: Sequence[int] = ()) -> tuple[int, int]:
    """Push the incidents waiting in the MISP outbox (these only, when given) to
    `server`, in one transaction. Returns (sent, failed)."""
    with db.transaction() as session:
        return deliver(session, lambda: event_sender(server), ids)
