"""A lone surrogate (a Python str can hold one; a JSON `\\ud800` escape or a JavaScript string
makes it) in any text a library caller hands the supervisor: a typed error naming the problem,
nothing written, and the session still usable. The HTTP layer refuses them earlier (400); this
is the core's own answer, for every caller that is not HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store import StoreError
from supervisor import Supervisor
from supervisor.adapters.error_codes import api_code
from supervisor.errors import SupervisorError

LONE = ["\ud800", "a\udc00b", "\udfff\ud800"]

CALLS: dict[str, Callable[[Supervisor, Any, Any, str, str], Any]] = {
    "repl input": lambda sup, t, s, wt, x: sup.repl(s.id, f"'{x}'"),
    "run code": lambda sup, t, s, wt, x: sup.run(code=f"'{x}'"),
    "run path": lambda sup, t, s, wt, x: sup.run(path=f"{x}.js"),
    "run_file path": lambda sup, t, s, wt, x: sup.run_file(s.id, f"{x}.js"),
    "template name": lambda sup, t, s, wt, x: sup.templates.create(f"t{x}"),
    "capability kind": lambda sup, t, s, wt, x: sup.templates.add_capability(t.id, f"k{x}", "n"),
    "capability name": lambda sup, t, s, wt, x: sup.templates.add_capability(t.id, "fs", f"n{x}"),
    "startup path": lambda sup, t, s, wt, x: sup.templates.add_startup_file(t.id, f"{x}.js"),
    "session workspace": lambda sup, t, s, wt, x: sup.create_session(t.id, f"w{x}", "c", wt),
    "session commit": lambda sup, t, s, wt, x: sup.create_session(t.id, "w", f"c{x}", wt),
    "session worktree": lambda sup, t, s, wt, x: sup.create_session(t.id, "w", "c", f"{wt}/{x}"),
}


@pytest.mark.parametrize("text", LONE, ids=["high", "low-inside", "reversed-pair"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_lone_surrogate_is_a_typed_refusal(sup: Supervisor, worktree: Path, call: str, text: str) -> None:
    template = sup.templates.create("plain")
    session = sup.create_session(template.id, "w", "c", str(worktree))
    before = (len(sup.templates.list()), len(sup.list_sessions()), len(sup.list_executions(session.id)),
              len(sup.templates.list_capabilities(template.id)), len(sup.templates.list_startup_files(template.id)))
    with pytest.raises((SupervisorError, StoreError)) as refused:
        CALLS[call](sup, template, session, str(worktree), text)
    assert api_code(refused.value) in ("VALIDATION_ERROR", "INVALID_PATH"), refused.value
    assert "lone surrogate" in str(refused.value)
    after = (len(sup.templates.list()), len(sup.list_sessions()), len(sup.list_executions(session.id)),
             len(sup.templates.list_capabilities(template.id)), len(sup.templates.list_startup_files(template.id)))
    assert after == before, "nothing is written"
    assert sup.repl(session.id, "40 + 2").result["json"] == 42
