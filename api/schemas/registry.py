"""The entity registry's CSV import and each entity's contacts."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.inputs import Input, Name


class Contact(Input):
    name: Name = Field(default="", max_length=200)
    email: Name = Field(default="", max_length=320)
    phone: Name = Field(default="", max_length=50)


class ContactsIn(Input):
    contacts: list[Contact] = Field(default=[], max_length=20)
    webhook_url: Name = Field(default="", max_length=500)
    webhook_secret: str = Field(default="", max_length=200)


class ContactOut(BaseModel):
    name: str = ""
    email: str = ""
    phone: str = ""


class ContactsOut(BaseModel):
    """Where the CERT's notices go (the webhook's secret never comes back)."""

    contacts: list[ContactOut]
    webhook_url: str


class ImportOut(BaseModel):
    added: int
    updated: int
    unchanged: int
    rejected: list[str]
