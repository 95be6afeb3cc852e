"""Shapes shared by every resource: the error answer, open documents, CSV and files."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    """A document whose named fields are described and which may carry more (ECS,
    STIX, MISP, figures grouped by a key that is data)."""

    model_config = ConfigDict(extra="allow")


class Problem(BaseModel):
    """Every refusal outside validation: the reason, in words."""

    detail: str = Field(description="why the request was refused")


# Routes that answer something other than JSON document it with these.
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


def binary(media_type: str = "application/octet-stream") -> dict[int | str, dict[str, Any]]:
    """A file's bytes (`*/*`: as the file's own type)."""
    schema = {"type": "string", "format": "binary"}
    return {200: {"content": {media_type: {"schema": schema}}, "description": "the file's bytes"}}


# Every refusal, whatever the route answers when it does not refuse (a STIX bundle,
# a CSV): FastAPI's HTTPException handler writes JSON.
ERRORS: dict[int | str, dict[str, Any]] = {
    "default": {
        "description": "refused",
        "content": {"application/json": {"schema": Problem.model_json_schema()}},
    }
}
