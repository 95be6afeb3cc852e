"""Uploaded files as the services take them: read up to a cap (one byte more, so
that the service sees a file too large), the base name checked, the media type
without its parameters."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.datastructures import UploadFile

from api.inputs import file_name
from api.services import Services
from certification.attach import Limits, Upload


def read_upload(
    file: object, max_bytes: int, default_name: str, missing: str = "file: attach a file"
) -> Upload:
    """A form's file field (422 `missing` when the field is absent or is text)."""
    if not isinstance(file, UploadFile):
        raise HTTPException(422, missing)
    data = file.file.read(max_bytes + 1)
    media = (file.content_type or "").split(";")[0].strip()
    return Upload(file_name(file.filename, default_name), media, data)


def evidence_limits(services: Services) -> Limits:
    s = services.settings
    return Limits(services.evidence_dir, s.evidence_types, s.evidence_max_bytes)


def text_body(body: bytes, limit: int, encoding: str, what: str) -> str:
    """A request body that is a text document (YAML, CSV): 413 past `limit` bytes,
    422 when it is not in `encoding`."""
    if len(body) > limit:
        raise HTTPException(413, f"{what} is limited to {limit} bytes")
    try:
        return body.decode(encoding)
    except UnicodeDecodeError:
        raise HTTPException(422, f"{what} must be UTF-8") from None
