"""Entities (the constituency), controls, self-assessments, certificates, progress."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session


# Imported in each listener: this package's modules import each other; any of them
# imports this file first, so a process that can write certification rows always
# has the listeners that keep certification_state with them.
def _follow(session: Session, flush_context: Any) -> None:
    from certification import progress_state

    progress_state.follow(session, flush_context)


def _settle(session: Session) -> None:
    from certification import progress_state

    progress_state.settle(session)


def _forget(session: Session) -> None:
    from certification import progress_state

    progress_state.forget(session)


event.listen(Session, "after_flush", _follow)
event.listen(Session, "before_commit", _settle)
event.listen(Session, "after_rollback", _forget)
