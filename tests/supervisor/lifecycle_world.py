"""The lifecycle machine's world (test_lifecycle_machine.py), and what its regression tests
(test_lifecycle_regressions.py) share with it: the JavaScript menu the machine picks
executions from, the model it checks the database against, a supervisor opened around a store
with the fault-injection seam (as `Supervisor.open` does), and a read of the database that
does not go through the store.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from store import FaultInjector, Store
from supervisor.core import Supervisor
from supervisor.settings import Ceilings

KEY = b"k" * 32
IMAGE_INTERVAL = 0.05
# Tight, but not so tight that a host-side pause charged to the script (a gen-2 garbage
# collection of this test process takes ~50 ms of the evaluating thread's CPU time) makes
# a trivial read time out.
TIGHT = {"cpu_ms": 150, "wall_ms": 300}
VAR_COUNT = 4
# The concurrent execution of the busy rule (normal sessions only): long enough that the rule's
# refusals and its look at the execution row fit inside it even when the host is loaded.
SLOW_MS = 300  # was 150: the window a stalled test thread must not outlast
WAIT_S = 15.0  # upper bound of any wait for another thread (never reached when healthy)

# DESIGN.md's table, written out here rather than imported, so the test does not trust the
# code it checks.
TERMINAL_TYPES = frozenset({"value", "exception", "limit"})
ALLOWED_TERMINAL = {
    "ok": {"value"},
    "error": {"exception"},
    "timeout": {"limit"},
    "limit_exceeded": {"limit"},
    "cancelled": {"exception", "limit"},
    "crashed": {"exception", "limit"},
}
SESSION_END_STATES = {"ready", "closed", "crashed"}

READ_ALL = ("Object.fromEntries([" + ", ".join(f"'v_{k}'" for k in range(VAR_COUNT))
            + "].filter(k => k in globalThis).map(k => [k, globalThis[k]]))")
OVERFLOW = "function f(){return f()+1} f()"
FLOOD = "for (let i = 0; ; i++) console.log('line', i)"
LOOP = "while(true){}"
SLOW = f"{{const t0 = Date.now(); while (Date.now() - t0 < {SLOW_MS}) {{}}}} 'slow done'"
THROWS = {
    "throw new TypeError('boom')": "TypeError",
    "null.x": "TypeError",
    "JSON.parse('{')": "SyntaxError",
    "Promise.reject(new RangeError('nope'))": "RangeError",
}
PERSIST_FAILED = "the execution's outcome could not be persisted"
# Long enough to pass through the interrupt handler (limit and cancel checks) many times.
COMPUTE = "(() => { let s = 0; for (let i = 0; i < 200000; i++) s += i; return s })()"
COMPUTE_RESULT = 199999 * 200000 // 2



# ----- the menu ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Snippet:
    """One thing an execution does, and how it changes the session's variables."""

    # assign read compute throw assign_throw overflow assign_overflow flood loop assign_loop
    kind: str
    code: str
    var: int | None = None
    value: int | None = None
    exc_name: str | None = None

    @property
    def assigns(self) -> bool:
        # A stack overflow traps: the instance is discarded and the state rolls back to the
        # checkpoint after the previous execution, so its assignment is lost. An exception or a
        # graceful limit stop keeps the state, assignment included.
        return self.kind in ("assign", "assign_throw", "assign_loop")


K = st.integers(0, VAR_COUNT - 1)
N = st.integers(-1000, 1000)


# Named builders, so that a falsifying example reads `assign_then_overflow(0, 5)`.
def assign(k: int, n: int) -> Snippet:
    return Snippet("assign", f"var v_{k} = {n}", k, n)


def read(k: int) -> Snippet:
    return Snippet("read", f"v_{k}", k)


def throw(code: str) -> Snippet:
    return Snippet("throw", code, exc_name=THROWS[code])


def assign_then_throw(k: int, n: int) -> Snippet:
    return Snippet("assign_throw", f"var v_{k} = {n}; throw new Error('after')", k, n)


def assign_then_overflow(k: int, n: int) -> Snippet:
    return Snippet("assign_overflow", f"var v_{k} = {n}; (function g(){{return g()+1}})()", k, n)


def assign_then_loop(k: int, n: int) -> Snippet:
    return Snippet("assign_loop", f"var v_{k} = {n}; while(true){{}}", k, n)


FAST_SNIPPETS = st.one_of(
    st.builds(assign, K, N),
    st.builds(read, K),
    st.just(Snippet("compute", COMPUTE)),
    st.sampled_from(sorted(THROWS)).map(throw),
    st.builds(assign_then_throw, K, N),
    st.just(Snippet("overflow", OVERFLOW)),
    st.builds(assign_then_overflow, K, N),
    st.just(Snippet("flood", FLOOD)),
)
LIMIT_SNIPPETS = st.one_of(
    st.just(Snippet("loop", LOOP)),
    st.builds(assign_then_loop, K, N),
)
PICK = st.integers(0, 10**6)
FAULT_POINT = st.sampled_from(["begin", "commit"])


@dataclass(frozen=True)
class RunFile:
    """A worktree file for run_file: `.js` scripts, or an `.mjs` module."""

    kind: str  # assign_args assign_env_module throw overflow (the value comes as args/env.n)
    var: int | None = None

    @property
    def suffix(self) -> str:
        return ".mjs" if self.kind == "assign_env_module" else ".js"

    def source(self) -> str:
        return {
            "assign_args": f"var v_{self.var} = args.n;",
            "assign_env_module": f"globalThis.v_{self.var} = env.n;\nexport const done = true;",
            "throw": "throw new Error('from a file')",
            "overflow": OVERFLOW,
        }[self.kind]


RUN_FILES = st.one_of(
    st.builds(RunFile, st.just("assign_args"), K),
    st.builds(RunFile, st.just("assign_env_module"), K),
    st.just(RunFile("throw")),
    st.just(RunFile("overflow")),
)


# ----- the model ----------------------------------------------------------------------------------

@dataclass
class TemplateModel:
    id: str
    tight: bool
    max_events: int
    startup: list[tuple[int, int]]  # (var, value) assignments, in run order
    bad_startup: bool


@dataclass
class SessionModel:
    id: str
    tight: bool
    max_events: int
    # ready | closed | crashed, or `unsettled` after a close whose status write failed
    status: str
    vars: dict[int, int] = field(default_factory=dict)
    # The values invariant reads every ready session with a REPL, and that read is an
    # execution that takes a checkpoint. Skipping it once after a spawn or a restart lets the
    # next rule run the session's first execution since then (a rollback to the spawn's or
    # the restored image's checkpoint, say) unmasked.
    skip_next_check: bool = False
    # An execution whose end the store refused twice (the record and its `crashed` retry):
    # its row may stay `running` until the session's next execution, which must record it
    # first, or until the session is closed or the supervisor restarts.
    unfinished: str | None = None
    unfinished_due: bool = False  # it must be finished by now

    def expected_json(self) -> dict[str, int]:
        return {f"v_{k}": v for k, v in sorted(self.vars.items())}


def open_supervisor(db_path: Path, faults: FaultInjector, run_root: Path) -> Supervisor:
    """What `Supervisor.open` does, around a store opened with the fault-injection seam."""
    store = Store.open(db_path, faults=faults)
    sup = Supervisor(store, library_dir=None, ceilings=Ceilings(), image_key=KEY,
                     run_root=run_root, image_interval=IMAGE_INTERVAL,
                     data_dir=db_path.with_name(db_path.name + ".data"))
    try:
        sup._recover()
        sup._images.start()
    except BaseException:
        sup.close()
        raise
    return sup


def read_db(db_path: Path) -> dict[str, Any]:
    """Sessions, executions (in start order) and events, from one read transaction."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("BEGIN")
        sessions = [dict(r) for r in conn.execute("SELECT * FROM sessions ORDER BY rowid")]
        executions = [dict(r) for r in conn.execute(
            "SELECT rowid AS rid, * FROM executions ORDER BY started_at, rowid")]
        events: dict[str, list[dict[str, Any]]] = {}
        for r in conn.execute("SELECT * FROM events ORDER BY execution_id, seq"):
            events.setdefault(r["execution_id"], []).append(dict(r))
        conn.execute("COMMIT")
    finally:
        conn.close()
    for e in executions:
        for col in ("result", "error", "metrics", "session_state", "args", "env"):
            e[col] = json.loads(e[col]) if e[col] is not None else None
    for evs in events.values():
        for ev in evs:
            ev["payload"] = json.loads(ev["payload"])
    return {"sessions": {s["id"]: s for s in sessions}, "executions": executions, "events": events}

