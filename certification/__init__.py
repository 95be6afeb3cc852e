"""Entities (the constituency), controls, self-assessments, certificates, progress."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session


def _follow(session: Session, flush_context: Any) -> None:
    # Imported here: this package's modules import each other; any of them
    # imports this file first, so a process that can write certification rows
    # always has the listener that keeps certification_state with them.
    from certification import progress_state

    progress_state.follow(session, flush_context)


event.listen(Session, "after_flush", _follow)
