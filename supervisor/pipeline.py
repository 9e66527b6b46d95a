"""The one execution pipeline: spawn → run → collect → persist.

Every kind of execution (startup, repl, run_file, run) goes through `Pipeline.execute`, which
holds the invariants of DESIGN.md:
* the row exists (`running`) before the script runs, and is finished before `execute`
  returns, whatever failed: a failed finish is retried as `crashed`, and only if that fails
  too does the caller get PersistenceFailed (the next start-up's reconcile then closes it);
* events are numbered 1..n in the order they happen, `input_echo` first (written with the
  row) and exactly one terminal event last, and they are streamed to the store as they happen (in small batches,
  none held back longer than ~50 ms: supervisor.event_recorder);
* an event the store refused is not lost: it goes out again with the finishing transaction;
* an execution whose end could not be recorded even as `crashed` is recorded as such before
  the next execution of its session starts (the store allows one running row per session).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

import store as store_mod
from sandbox import ErrorInfo, Event, Outcome, SessionState
from store import NewEvent, Store
from supervisor.errors import SupervisorError
from supervisor.event_recorder import FLUSHER, EventRecorder
from supervisor.host import ExecRequest, SessionHost
from supervisor.ids import execution_label
from vocabulary import TERMINAL_EVENT_TYPES

log = structlog.get_logger("supervisor.pipeline")


class PersistenceFailed(SupervisorError):
    """The store could not record an execution's end."""

    code = "INTERNAL"


@dataclass(frozen=True)
class ExecSpec:
    """What the caller asks for, besides the request the host runs."""

    kind: str  # startup | repl | run_file | run
    session_id: str | None
    input: str | None
    path: str | None
    args: dict[str, Any]
    env: dict[str, Any]
    echo: str  # the input_echo text: the code, or the path for run_file


def _session_state(state: SessionState, closed: bool) -> dict[str, Any]:
    if closed:
        return {"state": "closed"}
    if state.state == "rolled_back":
        return {"state": "rolled_back", "checkpoint_execution_id": execution_label(state.checkpoint)}
    return {"state": "kept"}


def _crash_outcome(message: str) -> Outcome:
    error = ErrorInfo("internal", "InternalError", message)
    terminal = Event("exception", {"name": "InternalError", "message": message}, time.time())
    return Outcome("crashed", None, error, [terminal], None, SessionState("kept"))


@dataclass
class _Unfinished:
    """An execution whose end the store refused twice: finished at the next chance."""

    execution_id: str
    recorder: EventRecorder
    metrics: dict[str, Any]
    state: dict[str, Any]


class Pipeline:
    def __init__(self, store: Store) -> None:
        self._store = store
        # By session id (None for one-shot runs): the store allows one running row per
        # session, so a leftover must be finished before that session can run again.
        self._unfinished: dict[str | None, list[_Unfinished]] = {}
        self._unfinished_lock = threading.Lock()

    def finish_all_leftovers(self) -> None:
        """Record every execution whose end is still pending (at shutdown); best effort."""
        with self._unfinished_lock:
            sessions = list(self._unfinished)
        for session_id in sessions:
            try:
                self._finish_leftovers(session_id)
            except PersistenceFailed:
                log.error("unfinished_execution_left", session_id=session_id)

    def _finish_leftovers(self, session_id: str | None) -> None:
        with self._unfinished_lock:
            leftovers = self._unfinished.pop(session_id, [])
        for i, left in enumerate(leftovers):
            try:
                self._finish_crashed(left.execution_id, left.recorder, left.metrics, left.state, None)
                log.info("unfinished_execution_recorded", leftover=left.execution_id)
            except PersistenceFailed:
                with self._unfinished_lock:
                    self._unfinished.setdefault(session_id, []).extend(leftovers[i:])
                raise

    def execute(self, spec: ExecSpec, host: SessionHost, request: ExecRequest,
                closed: Callable[[], bool] = lambda: False,
                execution_id: str | None = None) -> store_mod.Execution:
        """`execution_id` (a new one by default) lets the caller follow the events while it runs."""
        execution_id = execution_id if execution_id is not None else str(uuid.uuid4())
        structlog.contextvars.bind_contextvars(execution_id=execution_id)
        try:
            return self._execute(execution_id, spec, host, request, closed)
        finally:
            structlog.contextvars.unbind_contextvars("execution_id")

    def _execute(self, execution_id: str, spec: ExecSpec, host: SessionHost, request: ExecRequest,
                 closed: Callable[[], bool]) -> store_mod.Execution:
        self._finish_leftovers(spec.session_id)
        # The echo is known before the script starts: written with the row, it is the first
        # event of every execution that exists, even one a crash cuts short.
        echo = NewEvent(1, "input_echo", {"text": spec.echo})
        self._store.create_execution(spec.kind, session_id=spec.session_id, input=spec.input,
                                     path=spec.path, args=spec.args, env=spec.env, id=execution_id,
                                     first_events=[echo])
        recorder = EventRecorder(self._store, execution_id, written=echo.seq)
        request = ExecRequest(request.kind, request.code, request.filename, request.strict,
                              request.globals, request.limits, execution_id)
        FLUSHER.watch(recorder)
        try:
            outcome = host.execute(request, recorder.add)
        except Exception as exc:  # a host failure still ends the row
            log.error("host_failed", error=repr(exc))
            outcome = _crash_outcome(f"the session host failed: {type(exc).__name__}")
            recorder.add(outcome.events[-1])
        finally:
            FLUSHER.forget(recorder)
        return self._persist(execution_id, spec, outcome, recorder, closed())

    def _persist(self, execution_id: str, spec: ExecSpec, outcome: Outcome, recorder: EventRecorder,
                 closed: bool) -> store_mod.Execution:
        metrics = outcome.metrics.to_dict() if outcome.metrics else {}
        metrics["events"] = recorder.seq
        state = _session_state(outcome.session_state, closed or spec.kind == "run")
        error = outcome.error.to_dict() if outcome.error else None
        if outcome.error is not None and outcome.error.kind != "exception":
            log.info("execution_stopped", kind=outcome.error.kind, message=outcome.error.message)
        if outcome.session_state.state == "rolled_back":
            log.warning("session_rolled_back", checkpoint=outcome.session_state.checkpoint)
        try:
            return self._store.finish_execution(
                execution_id, outcome.status, result=outcome.value, error=error, metrics=metrics,
                session_state=state, remaining_events=recorder.pending)
        except store_mod.StoreError as exc:
            log.error("persist_failed", error=str(exc), retry="as crashed")
            try:
                return self._finish_crashed(execution_id, recorder, metrics, state, exc)
            except PersistenceFailed:
                with self._unfinished_lock:
                    self._unfinished.setdefault(spec.session_id, []).append(
                        _Unfinished(execution_id, recorder, metrics, state))
                raise

    def _finish_crashed(self, execution_id: str, recorder: EventRecorder, metrics: dict[str, Any],
                        state: dict[str, Any], cause: Exception | None) -> store_mod.Execution:
        message = "the execution's outcome could not be persisted"
        events = [e for e in recorder.pending if e.type not in TERMINAL_EVENT_TYPES]
        seq = events[-1].seq + 1 if events else _next_seq(self._store, execution_id)
        events.append(NewEvent(seq, "exception", {"name": "InternalError", "message": message}))
        metrics = dict(metrics, events=seq)
        try:
            return self._store.finish_execution(
                execution_id, "crashed", error={"kind": "internal", "name": "InternalError",
                                                "message": message},
                metrics=metrics, session_state=state, remaining_events=events)
        except store_mod.StoreError as exc:
            log.error("persist_failed_again", error=str(exc))
            raise PersistenceFailed(message, execution_id=execution_id) from cause


def _next_seq(store: Store, execution_id: str) -> int:
    stored = store.list_events(execution_id)
    return stored[-1].seq + 1 if stored else 1
