"""Sessions of a real Supervisor for the package tests (a unique module name: test folders here
are not packages): a session from a new template listing libraries, and a REPL's JSON value."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from supervisor import Supervisor


def session_with(sup: Supervisor, worktree: Path, *libraries: str) -> str:
    """A ready session of a new template listing `libraries`."""
    template = sup.templates.create(f"libs-{uuid.uuid4()}")
    for name in libraries:
        sup.templates.add_library(template.id, name)
    session = sup.create_session(template.id, "w", "c", str(worktree))
    assert session.status == "ready", session.last_error
    return session.id


def repl_value(sup: Supervisor, session_id: str, code: str) -> Any:
    """The JSON value of `code` run in the session, which must end ok."""
    execution = sup.repl(session_id, code)
    assert execution.status == "ok", execution.error
    assert execution.result is not None
    return execution.result.get("json")
