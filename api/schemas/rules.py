"""The running YARA pack and the files scanned with it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import Open


class RulesState(BaseModel):
    pack: str | None = Field(description="name@version of the running pack")
    rules: list[str]
    files: list[str]
    loaded_at: str | None
    error: str | None
    swaps: int
    scans: int
    scan_errors: int


class Pack(Open):
    """The running pack's rule sources (`sha256` is the ETag)."""

    sha256: str


class FileScanOut(BaseModel):
    sha256: str
    size: int
    yara: list[str] = Field(description="the rules that matched")
    alerts: list[str] = Field(description="the ids of the alerts raised or counted again")
    kept: bool | None = Field(description="true: stored now; false: held already; null: not kept")
