"""The supervisor under test, in-process: a supervisor on a real SQLite file in a temporary
directory (WAL mode, default settings, the background image writer included, as the daemon runs
it), and the checks of what it stored."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import supervisor
from benchmarks.checks import same_value
from benchmarks.timing import CheckFailed
from store import Event, Execution
from supervisor import SessionBusy, SupervisorApi

WORKSPACE = "bench-workspace"
BASE_COMMIT = "0" * 40
# Retry pause after SESSION_BUSY (see repl_retrying).
BUSY_PAUSE_S = 0.0005


class BusyCounter:
    """Counts SESSION_BUSY refusals of executions the benchmark then retried."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.refusals = 0
        self.calls_refused = 0

    def add(self, refusals: int) -> None:
        if refusals:
            with self._lock:
                self.refusals += refusals
                self.calls_refused += 1


def repl_retrying(sup: SupervisorApi, session_id: str, code: str, busy: BusyCounter) -> Execution:
    """sup.repl, retried while the session answers SESSION_BUSY.

    Nothing else runs executions on these sessions, so a refusal comes from the supervisor
    itself (its background image writer holds the session's lock while it captures and
    compresses an image): the wait is part of what a client pays, and it is counted.
    """
    refusals = 0
    try:
        while True:
            try:
                return sup.repl(session_id, code)
            except SessionBusy:
                refusals += 1
                time.sleep(BUSY_PAUSE_S)
    finally:
        busy.add(refusals)



def open_supervisor(stack: ExitStack, directory: Path, *, library_dir: Path | None = None,
                    workers: int = 0) -> SupervisorApi:
    """A supervisor on `<directory>/vm-system.db` with default settings, closed by `stack`;
    with `workers`, a ShardedSupervisor with the sessions in that many worker processes."""
    directory.mkdir(parents=True, exist_ok=True)
    sup = supervisor.open_supervisor(directory / "vm-system.db", workers=workers,
                                     library_dir=library_dir, run_root=directory,
                                     log_level="warning")
    stack.callback(sup.close)
    return sup


def worktree(directory: Path) -> str:
    path = directory / "worktree"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def close_sessions(sup: SupervisorApi, session_ids: list[str]) -> None:
    for session_id in session_ids:
        sup.close_session(session_id)
    session_ids.clear()


# ----- checks of what the store holds ---------------------------------------------------------


def execution_expects(expected: Any) -> Callable[[Any], None]:
    """A check of a stored Execution: finished ok with `expected` as its value."""

    def check(execution: Any) -> None:
        if not isinstance(execution, Execution):
            raise CheckFailed(f"expected an Execution, got {type(execution).__name__}")
        if execution.status != "ok":
            raise CheckFailed(f"execution {execution.id} ended {execution.status}: "
                              f"{execution.error}")
        value = execution.result or {}
        if not same_value(value.get("json"), expected):
            raise CheckFailed(f"expected {expected!r}, got {value.get('preview', value)!r}")

    return check


def workload_code(i: int) -> str:
    """The code of the i-th execution of a session in the concurrency scenario."""
    return f"console.log({i}); {i}"


@dataclass(frozen=True)
class SessionRecord:
    """What the store holds about one session's executions (newest first, as listed)."""

    session_id: str
    executions: list[Execution]
    events: dict[str, list[Event]]


def collect_record(sup: SupervisorApi, session_id: str, count: int) -> SessionRecord:
    """Read a session's last `count` (≤ 1000) executions and all their events."""
    executions = sup.list_executions(session_id, limit=count)
    return SessionRecord(session_id, executions,
                         {e.id: sup.list_events(e.id) for e in executions})


def record_problems(record: SessionRecord, count: int,
                    code: Callable[[int], str] = workload_code) -> list[str]:
    """Everything wrong with a session that ran code(0) .. code(count - 1) one after the other.

    Each execution must be a finished `repl` of the right code with the right value, ending
    before the next one starts, and must have exactly three events: seq 1 input_echo (the code),
    seq 2 console (the number's text), seq 3 value (the number), with non-decreasing times.
    """
    problems: list[str] = []
    executions = list(reversed(record.executions))  # oldest first
    if len(executions) != count:
        problems.append(f"session {record.session_id}: {len(executions)} executions stored, "
                        f"{count} expected")
    for k, ex in enumerate(executions):
        where = f"execution #{k} ({ex.id})"
        source = code(k)
        if ex.input != source:
            problems.append(f"{where}: input {ex.input!r}, expected {source!r} "
                            "(lost or misordered)")
        if ex.kind != "repl" or ex.status != "ok":
            problems.append(f"{where}: {ex.kind} ended {ex.status}, expected a repl ending ok")
        if not same_value((ex.result or {}).get("json"), k):
            problems.append(f"{where}: result {ex.result!r}, expected the value {k}")
        if ex.metrics.get("events") != 3:
            problems.append(f"{where}: metrics count {ex.metrics.get('events')!r} events, "
                            "expected 3")
        if k + 1 < len(executions):
            nxt = executions[k + 1]
            if ex.ended_at is None or ex.ended_at > nxt.started_at:
                problems.append(f"{where}: ended at {ex.ended_at}, after the next one started "
                                f"({nxt.started_at})")
        problems.extend(_event_problems(where, ex.id, record.events.get(ex.id, []), source, k))
    return problems


def _event_problems(where: str, execution_id: str, events: Sequence[Event], source: str,
                    value: int) -> list[str]:
    expected: list[tuple[int, str, dict[str, Any]]] = [(1, "input_echo", {"text": source}),
                (2, "console", {"text": str(value)}),
                (3, "value", {"json": value})]
    problems: list[str] = []
    got = [(e.seq, e.type) for e in events]
    if got != [(seq, type_) for seq, type_, _ in expected]:
        problems.append(f"{where}: events {got}, expected "
                        f"{[(seq, type_) for seq, type_, _ in expected]}")
    for event, (_, type_, payload) in zip(events, expected, strict=False):  # a count mismatch is reported above
        if event.execution_id != execution_id:
            problems.append(f"{where}: event seq {event.seq} belongs to {event.execution_id}")
        if event.type != type_:
            continue  # already reported above
        for key, want in payload.items():
            if not same_value(event.payload.get(key), want):
                problems.append(f"{where}: {type_} event has {key}={event.payload.get(key)!r}, "
                                f"expected {want!r}")
    for before, after in zip(events, events[1:], strict=False):
        if after.ts < before.ts:
            problems.append(f"{where}: event seq {after.seq} is timed before seq {before.seq}")
    return problems
