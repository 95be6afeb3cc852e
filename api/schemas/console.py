"""The console's forms (posted as form fields, with the CSRF token beside them)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.inputs import Input, Name, Text


class ConsoleForm(Input):
    """A console form: its fields and the session's CSRF token (checked before the
    form is read as this model, by api.console_deps.console_principal); any other
    field is refused (422), as in the API's bodies."""

    csrf: str = Field(default="", max_length=200)


class Transition(ConsoleForm):
    version: int
    to: str = Field(max_length=20)
    resolution: str = Field(default="", max_length=40)
    comment: Text = Field(default="", max_length=5000)


class Edit(ConsoleForm):
    version: int
    title: Name = Field(max_length=300)
    summary: Text = Field(default="", max_length=20000)
    rsit: str = Field(default="", max_length=130, description='"class/type"')
    ncciss: int = Field(default=1, ge=0, le=5)
    tlp: str = Field(default="amber", max_length=20)
    pap: str = Field(default="amber", max_length=10)

    def fields(self) -> dict[str, Any]:
        """As the incident service takes them (RSIT split in class and type)."""
        rsit_class, _, rsit_type = self.rsit.partition("/")
        return {
            "title": self.title,
            "summary": self.summary,
            "rsit_class": rsit_class or None,
            "rsit_type": rsit_type or None,
            "ncciss": self.ncciss,
            "tlp": self.tlp,
            "pap": self.pap,
        }


class Assign(ConsoleForm):
    version: int
    owner: str = Field(
        default="", max_length=200, description='an analyst\'s actor ("analyst:ana"); "" for nobody'
    )


class Task(ConsoleForm):
    title: Name = Field(max_length=300)
    assignee: Name = Field(default="", max_length=200)


class TaskDone(ConsoleForm):
    version: int
    done: bool = False


class Note(ConsoleForm):
    body: Text = Field(max_length=20000)
    tlp: str = Field(default="amber", max_length=20)


class Reply(ConsoleForm):
    body: Text = Field(max_length=20000)
