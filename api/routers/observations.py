"""`POST /api/v1/observations`: a sensor's batch, idempotent by batch id (gzip welcome)."""

from __future__ import annotations

import zlib
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import Sensor, ServicesDep
from api.limits import RawBody
from api.schemas.sensors import BatchEnvelope, BatchIn, BatchOut
from core.tokens import Role
from correlator.ingest import BatchError

router = APIRouter(prefix="/api/v1/observations", tags=["observations"])
MAX_BODY = 64 * 1024 * 1024  # after decompression: a bomb stops here


def batch_body(request: Request, raw: RawBody) -> BatchEnvelope:
    """The JSON body, gunzipped first when the sensor compressed it (in a worker
    thread: inflating and parsing 64 MiB would stall the event loop)."""
    if request.headers.get("content-encoding", "").lower() == "gzip":
        d = zlib.decompressobj(wbits=31)
        try:
            raw = d.decompress(raw, MAX_BODY)
        except zlib.error as exc:
            raise HTTPException(400, f"body is not valid gzip: {exc}") from None
        if d.unconsumed_tail:
            raise HTTPException(413, f"batch larger than {MAX_BODY} bytes once decompressed")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"body is not JSON: {exc}") from None
    try:
        return BatchEnvelope.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@router.post(
    "",
    response_model=BatchOut,
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": BatchIn.model_json_schema()}},
            "required": True,
        }
    },
)
def ingest(
    principal: Sensor, batch: Annotated[BatchEnvelope, Depends(batch_body)], services: ServicesDep
) -> BatchOut:  # the caller is authenticated before its body is read
    # The token names the observer: a sensor's batch is stored as that sensor's, and
    # an observation naming another (in any spelling) is refused with its position.
    bound = principal.name if principal.role is Role.SENSOR else None
    try:
        result = services.ingest.ingest(batch.batch_id, batch.observations, observer=bound)
    except BatchError as exc:
        raise HTTPException(422, str(exc)) from None
    return BatchOut(
        batch_id=result.batch_id,
        observations=result.observations,
        alerts=result.alerts,
        duplicate=result.duplicate,
    )
