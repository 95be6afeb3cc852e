"""What the API takes in, checked in one place: integer ids bounded to what the
database stores, names free of control and direction-override characters, and
request models that refuse keys they do not know (422, never a silent default)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path
from pydantic import AfterValidator, BaseModel, ConfigDict

from core import names

# SQLite and PostgreSQL integers are signed 64-bit: a larger id is no row's, and
# the driver would raise (a 500) before the query ran.
MAX_ID = 2**63 - 1


Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def _refuse(found: str | None, what: str) -> None:
    if found:
        raise ValueError(f"character {found} is not allowed in {what}")


def clean_name(value: str) -> str:
    _refuse(names.refused_in_name(value), "a name")
    return value


def clean_text(value: str) -> str:
    _refuse(names.refused_in_text(value), "text")
    return value


def file_name(value: str | None, default: str) -> str:
    """An upload's file name, base name only; a 422 when it hides characters."""
    name = (value or "").replace("\\", "/").rsplit("/", 1)[-1][:255] or default
    try:
        return clean_name(name)
    except ValueError as exc:
        raise HTTPException(422, f"file name: {exc}") from None


Name = Annotated[str, AfterValidator(clean_name)]
Text = Annotated[str, AfterValidator(clean_text)]


class Input(BaseModel):
    """Base of every request body: an unknown key is a 422 that names it (a typo in a
    PUT would otherwise reset the field it meant to set)."""

    model_config = ConfigDict(extra="forbid")


# What a 422 says, as the app's handler writes it (api.app): one readable reason,
# then FastAPI's list when the request failed validation. FastAPI documents its
# own shape (`detail` a list); the schema served is made to say this one.
VALIDATION_ERROR = {
    "title": "ValidationError",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "title": "Detail"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def document_validation_errors(app: FastAPI) -> None:
    """Serve the 422 schema above in the app's OpenAPI instead of FastAPI's."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.get("components", {}).get("schemas", {})["HTTPValidationError"] = (
                VALIDATION_ERROR
            )
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
