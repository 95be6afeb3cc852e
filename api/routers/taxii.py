"""TAXII 2.1 (read only): discovery at /taxii2/, one API root, the collections a
token may read (incidents.taxii), their objects and manifests, paged by keyset.

Readers: CERT staff (every collection), an entity token (all entities' and its
own), a peer CERT's token (role `peer`: the peers' collections). Errors are TAXII
error messages, the refusals of the token check included."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from api.deps import ServicesDep, SessionDep, require
from api.limits import SMALL
from api.schemas.taxii import (
    ApiRoot,
    CollectionOut,
    Collections,
    Discovery,
    Envelope,
    Manifest,
    TaxiiError,
)
from certification.registry import Registry
from core.clock import parse_iso, utcnow
from core.tokens import Principal, Role
from incidents import taxii

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"
ROOT = "vigia"
DEFAULT_LIMIT = 100


class TaxiiResponse(JSONResponse):
    media_type = TAXII


def taxii_error(status: int, title: str, headers: Mapping[str, str] | None = None) -> Response:
    body = {"title": title, "http_status": str(status)}
    return TaxiiResponse(body, status_code=status, headers=headers)


class TaxiiRoute(APIRoute):
    """Every refusal of these routes (token, role, input) as a TAXII error message."""

    def get_route_handler(self) -> Any:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except HTTPException as exc:
                return taxii_error(exc.status_code, str(exc.detail), exc.headers)
            except RequestValidationError as exc:
                errs = exc.errors()
                where = ".".join(str(p) for p in errs[0].get("loc", ())) if errs else ""
                msg = errs[0].get("msg", "invalid request") if errs else "invalid request"
                return taxii_error(400, f"{where}: {msg}" if where else str(msg))

        return route


router = APIRouter(
    prefix="/taxii2",
    tags=["taxii"],
    route_class=TaxiiRoute,
    default_response_class=TaxiiResponse,
    responses={"default": {"model": TaxiiError, "description": "a TAXII error message"}},
)
TaxiiReader = Annotated[
    Principal,
    Depends(require(Role.ADMIN, Role.ANALYST, Role.AUDITOR, Role.ENTITY, Role.PEER)),
]


def _accepts(request: Request) -> None:
    accept = request.headers.get("accept", "*/*").replace(" ", "").lower()
    ok = any(
        kind.split(";")[0] in ("*/*", "application/*", "application/taxii+json")
        and ("version=" not in kind or "version=2.1" in kind)
        for kind in accept.split(",")
    )
    if not ok:
        raise HTTPException(406, f"this server answers {TAXII} only")


Accepts = Depends(_accepts)


def _reader(principal: Principal) -> taxii.Reader:
    return taxii.Reader(
        staff=principal.role in (Role.ADMIN, Role.ANALYST, Role.AUDITOR),
        entity_id=principal.entity_id if principal.role is Role.ENTITY else None,
        peer=principal.role is Role.PEER,
    )


def _entity_ids(session: Session, principal: Principal) -> list[str]:
    if principal.role not in (Role.ADMIN, Role.ANALYST, Role.AUDITOR):
        return []
    return [e.id for e in Registry.all(session)]


def _collection(session: Session, principal: Principal, collection_id: str) -> taxii.Collection:
    found = taxii.find(_reader(principal), collection_id, _entity_ids(session, principal))
    if found is None:  # not there, or not for this token: the same answer
        raise HTTPException(404, f"no collection {collection_id} for this token")
    return found


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _root_url(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/taxii2/{ROOT}/"


@router.get("/", dependencies=[Accepts], response_model=Discovery)
def discovery(request: Request, principal: TaxiiReader, services: ServicesDep) -> TaxiiResponse:
    root = _root_url(request)
    return TaxiiResponse(
        {
            "title": f"{services.settings.observer_name}: indicadores compartidos",
            "description": "Indicadores del CERT en STIX 2.1, por TLP y destinatario",
            "default": root,
            "api_roots": [root],
        }
    )


@router.get(f"/{ROOT}/", dependencies=[Accepts], response_model=ApiRoot)
def api_root(principal: TaxiiReader, services: ServicesDep) -> TaxiiResponse:
    return TaxiiResponse(
        {
            "title": f"{services.settings.observer_name}",
            "description": "Colecciones de indicadores por TLP: entidades, una entidad, CERT pares",
            "versions": [TAXII],
            "max_content_length": SMALL,
        }
    )


def _resource(c: taxii.Collection) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "description": c.description,
        "alias": c.alias,
        "can_read": True,
        "can_write": False,
        "media_types": [STIX],
    }


@router.get(f"/{ROOT}/collections/", dependencies=[Accepts], response_model=Collections)
def list_collections(session: SessionDep, principal: TaxiiReader) -> TaxiiResponse:
    found = taxii.collections(_reader(principal), _entity_ids(session, principal))
    return TaxiiResponse({"collections": [_resource(c) for c in found]} if found else {})


@router.get(
    f"/{ROOT}/collections/{{collection_id}}/", dependencies=[Accepts], response_model=CollectionOut
)
def get_collection(
    collection_id: str, session: SessionDep, principal: TaxiiReader
) -> TaxiiResponse:
    return TaxiiResponse(_resource(_collection(session, principal, collection_id)))


Limit = Annotated[int, Query(ge=1, description=f"at most {taxii.MAX_LIMIT} are served")]
Next = Annotated[str | None, Query(alias="next", max_length=200)]
AddedAfter = Annotated[str | None, Query(max_length=40)]


def _page(
    collection_id: str,
    session: SessionDep,
    principal: TaxiiReader,
    services: ServicesDep,
    added_after: AddedAfter = None,
    limit: Limit = DEFAULT_LIMIT,
    next_: Next = None,
) -> taxii.Page:
    """A page of a collection's entries, as its objects and its manifest list them."""
    c = _collection(session, principal, collection_id)
    try:
        after = parse_iso(added_after).astimezone(UTC) if added_after else None
    except (ValueError, OverflowError):
        raise HTTPException(400, f"added_after: not a timestamp: {added_after!r}") from None
    try:
        cursor = taxii.Key.decode(next_) if next_ else None
    except taxii.TaxiiError as exc:
        raise HTTPException(400, str(exc)) from None
    return taxii.page(
        session,
        c,
        services.settings.observer_name,
        limit=min(limit, taxii.MAX_LIMIT),
        cursor=cursor,
        added_after=after,
        now=utcnow(),
    )


PageDep = Annotated[taxii.Page, Depends(_page)]


def _envelope(p: taxii.Page, items: list[dict[str, Any]]) -> TaxiiResponse:
    body: dict[str, Any] = {"more": p.more}
    if p.next:
        body["next"] = p.next
    headers = {}
    if p.entries:
        body["objects"] = items
        headers["X-TAXII-Date-Added-First"] = _ts(p.entries[0].key.added)
        headers["X-TAXII-Date-Added-Last"] = _ts(p.entries[-1].key.added)
    return TaxiiResponse(body, headers=headers)


@router.get(
    f"/{ROOT}/collections/{{collection_id}}/objects/",
    dependencies=[Accepts],
    response_model=Envelope,
)
def get_objects(p: PageDep) -> TaxiiResponse:
    return _envelope(p, [e.obj for e in p.entries])


@router.get(
    f"/{ROOT}/collections/{{collection_id}}/manifest/",
    dependencies=[Accepts],
    response_model=Manifest,
)
def get_manifest(p: PageDep) -> TaxiiResponse:
    records = [
        {
            "id": e.stix_id,
            "date_added": _ts(e.key.added),
            # as the object says it (a marking definition has no versions: its created)
            "version": e.obj.get("modified", e.obj["created"]),
            "media_type": STIX,
        }
        for e in p.entries
    ]
    return _envelope(p, records)


# Last: anything else under /taxii2/ answers as TAXII does (the spec's URLs end in a
# slash; one without it is sent to its slashed form, as FastAPI would).
@router.api_route("/{rest:path}", methods=["GET", "POST", "DELETE"], include_in_schema=False)
def elsewhere(rest: str, request: Request, principal: TaxiiReader) -> Response:
    if request.method != "GET":
        raise HTTPException(405, "this TAXII server is read only", headers={"Allow": "GET"})
    if rest and not rest.endswith("/"):
        return RedirectResponse(request.url.replace(path=f"/taxii2/{rest}/"), status_code=307)
    raise HTTPException(404, f"no TAXII resource at /taxii2/{rest}")
