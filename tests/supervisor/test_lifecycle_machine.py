"""Property-based lifecycle tests of the supervisor core (DESIGN.md, "The execution pipeline").

A hypothesis state machine drives a REAL `Supervisor` on a REAL SQLite file in a temp dir
through random sequences of: template creation (some with startup files, some with tight
limits), template tightening (sessions capture settings at spawn), session spawn (sometimes
with a store write failing), REPL executions from a small menu (assignments, reads, throws,
limit hits, stack overflows that roll back, console floods), run_file, one-shot runs,
closing sessions (sometimes while an execution runs in another thread), a concurrent REPL
that must get SESSION_BUSY, restarting the supervisor on the same file, and injected store
write failures, once or twice in a row (the store's own `FaultInjector` seam; nothing is
mocked; a supervisor is built around a store opened with it, as `Supervisor.open` does).

After every step the invariants are checked by reading the database file with a separate,
read-only SQLite connection (not through the store):
* no execution row is `running` (except one whose end the store refused twice, until its
  session runs again, is closed, or the supervisor restarts);
* every execution's events are seq 1..n, `input_echo` first, exactly one terminal event, last,
  matching the row (`value` <=> ok and a result; `exception` <=> error; `limit` <=> timeout
  or limit_exceeded; cancelled/crashed may end with either);
* a rolled-back execution names the checkpoint it rolled back to: the latest earlier
  execution of its session that kept its state (none when there is none);
* every session is `ready` (and live), `closed` or `crashed`, as the model says;
* every ready session answers a REPL read with the variables the model says it holds.

The menu, the model and the database read are in lifecycle_world.py; the regression tests for
the bugs this machine found are in test_lifecycle_regressions.py.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import store as store_mod
from store import FaultInjector, StoreError
from supervisor.errors import SessionBusy, SessionNotReady, SupervisorError
from tests.supervisor.lifecycle_world import (
    ALLOWED_TERMINAL,
    COMPUTE_RESULT,
    FAST_SNIPPETS,
    FAULT_POINT,
    FLOOD,
    LIMIT_SNIPPETS,
    LOOP,
    OVERFLOW,
    PERSIST_FAILED,
    PICK,
    READ_ALL,
    RUN_FILES,
    SESSION_END_STATES,
    SLOW,
    TERMINAL_TYPES,
    TIGHT,
    WAIT_S,
    K,
    N,
    RunFile,
    SessionModel,
    Snippet,
    TemplateModel,
    open_supervisor,
    read_db,
)


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="vm-lifecycle-"))
        self.db_path = self.dir / "vm-system.db"
        self.worktree = self.dir / "worktree"
        self.worktree.mkdir()
        (self.worktree / "plain.js").write_text("40 + 2")
        self.faults = FaultInjector()
        self.sup = open_supervisor(self.db_path, self.faults, self.dir)
        self.templates: list[TemplateModel] = []
        self.sessions: dict[str, SessionModel] = {}
        self.counter = 0
        self.since_restart = 0  # executions since the last restart
        self.threads: list[threading.Thread] = []

    def teardown(self) -> None:
        for thread in self.threads:
            thread.join(WAIT_S)
        try:
            self.sup.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ----- helpers ------------------------------------------------------------------------------

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def _ready(self, tight: bool | None = None) -> list[SessionModel]:
        return [s for s in self.sessions.values()
                if s.status == "ready" and (tight is None or s.tight == tight)]

    @staticmethod
    def _pick(items: list[Any], pick: int) -> Any:
        return items[pick % len(items)]

    def _executing(self, s: SessionModel, check: bool) -> None:
        """An execution rule runs in `s`; `check` False skips the read right after it, so
        that the next execution's rollback target is this one, not the invariant's read."""
        self.since_restart += 1
        s.skip_next_check = not check
        s.unfinished_due = True

    def _execution_ids(self, session_id: str | None) -> list[str]:
        return [e["id"] for e in read_db(self.db_path)["executions"]
                if e["session_id"] == session_id]

    def _arm(self, op: str | None, at: str, times: int = 1) -> None:
        self.faults.clear()
        self.faults.fired.clear()
        if op is not None:
            self.faults.fail_next(op, at=at, times=times)  # type: ignore[arg-type]

    def _disarm(self) -> set[str]:
        fired = {op for op, _ in self.faults.fired}
        self.faults.clear()
        self.faults.fired.clear()
        return fired

    def _failed_write_raised(self, s: SessionModel, exc: Exception, before: list[str],
                             var: int | None, value: int | None) -> None:
        """An execution call raised a typed error after an injected write failure. That is
        allowed; the invariants (no row left running, well-formed events) must hold anyway."""
        fired = self._disarm()
        assert fired, f"the call raised without any write failing: {exc!r}"
        rows = {e["id"]: e for e in read_db(self.db_path)["executions"] if e["session_id"] == s.id}
        new = [i for i in rows if i not in before]
        if not new:
            # Refused before it ran: its row could not be created (or an earlier execution's
            # leftover could not be recorded first).
            if "create_execution" in fired:
                return
            assert s.unfinished is not None and rows[s.unfinished]["status"] == "running", exc
            s.unfinished_due = False  # still waiting for a healthy write
            return
        assert len(new) == 1, new
        if var is not None:
            s.vars[var] = value  # the script ran, only its record failed
        if rows[new[0]]["status"] == "running":
            s.unfinished, s.unfinished_due = new[0], False

    def _events(self, execution_id: str) -> list[dict[str, Any]]:
        return read_db(self.db_path)["events"].get(execution_id, [])

    def _wait_running(self, s: SessionModel) -> None:
        """Until an execution of `s` (not a leftover of an earlier one) is `running`."""
        deadline = time.monotonic() + WAIT_S
        while True:
            conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
            try:
                row = conn.execute("SELECT 1 FROM executions WHERE session_id = ? AND"
                                   " status = 'running' AND id IS NOT ?",
                                   (s.id, s.unfinished)).fetchone()
            finally:
                conn.close()
            if row is not None:
                return
            assert time.monotonic() < deadline, "the execution in the other thread never started"
            time.sleep(0.0005)

    def _in_thread(self, fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = fn()
            except BaseException as exc:  # reported by the rule
                box["error"] = exc

        thread = threading.Thread(target=run, name="lifecycle-concurrent")
        self.threads.append(thread)
        thread.start()
        return thread, box

    def _join(self, thread: threading.Thread, box: dict[str, Any]) -> Any:
        thread.join(WAIT_S)
        assert not thread.is_alive(), "the concurrent execution did not end"
        self.threads.remove(thread)
        if "error" in box:
            raise box["error"]
        return box["result"]

    # ----- checking one execution ---------------------------------------------------------------

    def _check_snippet(self, s: SessionModel, snip: Snippet, ex: store_mod.Execution,
                       fired: set[str]) -> None:
        """Check the returned execution of `snip` and apply its effect to the model."""
        events = self._events(ex.id)
        assert ex.kind == "repl" and ex.input == snip.code and ex.session_id == s.id
        assert events and events[0]["type"] == "input_echo" and events[0]["payload"]["text"] == snip.code
        state = (ex.session_state or {}).get("state")
        rolls_back = snip.kind in ("overflow", "assign_overflow")
        if "finish_execution" in fired:
            # The script ran to its end; only its record failed, and was retried as crashed.
            assert ex.status == "crashed", ex
            assert ex.error["kind"] == "internal" and ex.error["message"] == PERSIST_FAILED, ex.error
            assert events[-1]["type"] == "exception"
            assert state == ("rolled_back" if rolls_back else "kept"), ex.session_state
        elif "append_events" in fired and ex.status == "crashed":
            # A streamed batch was refused: the script was stopped, and no line is lost (the
            # refused batch went out with the finishing transaction).
            assert snip.kind == "flood", snip
            assert ex.error["kind"] == "internal", ex
            assert state == "kept"
            self._check_flood_lines(events, at_most=s.max_events)
        else:
            self._check_normal(s, snip, ex, events)
        if snip.assigns:
            s.vars[snip.var] = snip.value

    def _check_normal(self, s: SessionModel, snip: Snippet, ex: store_mod.Execution,
                      events: list[dict[str, Any]]) -> None:
        state = (ex.session_state or {}).get("state")
        kind = snip.kind
        if kind == "assign":
            assert ex.status == "ok" and ex.result["type"] == "undefined", ex
        elif kind == "read":
            if snip.var in s.vars:
                assert ex.status == "ok" and ex.result.get("json") == s.vars[snip.var], (ex, s.vars)
            else:
                assert ex.status == "error" and ex.error["name"] == "ReferenceError", (ex, s.vars)
        elif kind == "compute":
            assert ex.status == "ok" and ex.result.get("json") == COMPUTE_RESULT, ex
        elif kind == "throw":
            assert ex.status == "error" and ex.error["kind"] == "exception", ex
            assert ex.error["name"] == snip.exc_name, ex.error
        elif kind == "assign_throw":
            assert ex.status == "error" and ex.error["message"] == "after", ex
        elif kind in ("overflow", "assign_overflow"):
            assert ex.status == "limit_exceeded" and ex.error["kind"] == "stack_overflow", ex
            assert state == "rolled_back", ex.session_state
            return
        elif kind == "flood":
            lines = self._check_flood_lines(events, at_most=s.max_events)
            if ex.status == "limit_exceeded":
                assert ex.error["kind"] == "event_limit", ex.error
                assert lines == s.max_events, (lines, s.max_events)
            else:
                # Only a tight session may hit its time limit first, on a very loaded machine.
                assert s.tight and ex.status == "timeout", ex
        elif kind in ("loop", "assign_loop"):
            assert s.tight, "a loop only runs in a session with tight limits"
            assert ex.status == "timeout" and ex.error["kind"] in ("cpu_limit", "timeout"), ex
            limit = ex.error["limit"]
            # The limits captured at spawn, also after a restart.
            assert limit["value"] == TIGHT[limit["name"]], limit
        else:  # pragma: no cover
            raise AssertionError(kind)
        assert state == "kept", ex.session_state

    @staticmethod
    def _check_flood_lines(events: list[dict[str, Any]], at_most: int) -> int:
        lines = [e["payload"]["text"] for e in events if e["type"] == "console"]
        assert lines == [f"line {i}" for i in range(len(lines))], "console lines lost or reordered"
        assert len(lines) <= at_most
        return len(lines)

    # ----- templates ----------------------------------------------------------------------------

    @initialize(max_events=st.sampled_from([40, 300]),
                startup=st.lists(st.tuples(K, N), max_size=2))
    def first_templates_and_sessions(self, max_events: int, startup: list[tuple[int, int]]) -> None:
        """A normal and a tight template, and a session of each (left unread, so that the
        first rule may run their first execution)."""
        self.create_template(False, max_events, startup, False, [])
        self.create_template(True, 340 - max_events, [], False, [])
        self.create_session(0, None, "commit", False)
        self.create_session(1, None, "commit", False)

    @rule(tight=st.booleans(), max_events=st.sampled_from([40, 300]),
          startup=st.lists(st.tuples(K, N), max_size=2),
          bad_startup=st.integers(0, 4).map(lambda x: x == 0),
          order=st.lists(st.integers(-5, 5), min_size=3, max_size=3))
    def create_template(self, tight: bool, max_events: int, startup: list[tuple[int, int]],
                        bad_startup: bool, order: list[int]) -> None:
        n = self._next()
        template = self.sup.templates.create(f"template-{n}")
        limits = {"max_events": max_events} | (TIGHT if tight else {})
        self.sup.templates.patch_settings(template.id, {"limits": limits})
        files = [(f"startup/t{n}_{j}.js", f"var v_{k} = {v};", (k, v))
                 for j, (k, v) in enumerate(startup)]
        if bad_startup:
            files.append((f"startup/t{n}_bad.js", "throw new Error('bad startup')", None))
        (self.worktree / "startup").mkdir(exist_ok=True)
        added = []
        for j, (path, source, effect) in enumerate(files):
            (self.worktree / path).write_text(source)
            # Distinct order indices, not in creation order: spawn must follow order_index.
            index = order[j] * 10 + j if j < len(order) else 100 + j
            if effect is None:
                index = 1000  # the failing file runs last
            self.sup.templates.add_startup_file(template.id, path, order_index=index)
            added.append((index, path, effect))
        added.sort(key=lambda a: (a[0], a[1]))
        self.templates.append(TemplateModel(template.id, tight, max_events,
                                            [e for _, _, e in added if e is not None], bad_startup))

    @precondition(lambda self: any(not t.tight for t in self.templates))
    @rule(pick=PICK)
    def tighten_template(self, pick: int) -> None:
        """Sessions capture settings at spawn: only sessions spawned later are tight."""
        t = self._pick([t for t in self.templates if not t.tight], pick)
        self.sup.templates.patch_settings(t.id, {"limits": TIGHT})
        t.tight = True

    # ----- sessions -----------------------------------------------------------------------------

    @precondition(lambda self: self.templates)
    @rule(pick=PICK,
          fault=st.sampled_from([None, None, None, "save_image", "set_session_status",
                                 "create_session"]),
          at=FAULT_POINT, check=st.booleans())
    def create_session(self, pick: int, fault: str | None, at: str, check: bool) -> None:
        t = self._pick(self.templates, pick)
        before = set(read_db(self.db_path)["sessions"])
        self._arm(fault, at)
        try:
            session = self.sup.create_session(t.id, "ws", "c0ffee", str(self.worktree))
        except (SupervisorError, StoreError) as exc:
            fired = self._disarm()
            new = set(read_db(self.db_path)["sessions"]) - before
            if not new:
                assert "create_session" in fired, f"no session row, yet its write did not fail: {exc!r}"
                return
            assert t.bad_startup or fired, exc
            assert len(new) == 1, new
            session_id = new.pop()
            if isinstance(exc, SupervisorError):
                assert exc.details.get("session_id") == session_id, exc.details
            # A failed spawn leaves the session visibly crashed (sessions_are_settled).
            self.sessions[session_id] = SessionModel(session_id, t.tight, t.max_events, "crashed")
            return
        self._disarm()  # a failed write may have been retried: success is fine too
        assert not t.bad_startup, "a template whose startup file throws spawned a session"
        assert session.status == "ready"
        model = SessionModel(session.id, t.tight, t.max_events, "ready", skip_next_check=not check)
        for k, v in t.startup:
            model.vars[k] = v
        self.sessions[session.id] = model

    # Closing needs two ready sessions, so that most steps have a session to run in.
    @precondition(lambda self: len(self._ready()) >= 2)
    @rule(pick=PICK, fault=st.sampled_from([None, "set_session_status"]),
          at=FAULT_POINT, times=st.sampled_from([1, 2]))
    def close_session(self, pick: int, fault: str | None, at: str, times: int) -> None:
        s = self._pick(list(self.sessions.values()), pick)
        self._arm(fault, at, times)
        try:
            closed = self.sup.close_session(s.id)
        except (StoreError, SupervisorError):
            assert self._disarm() == {"set_session_status"}
            s.status = "unsettled"  # ready and live, or closed: the invariant settles it
            return
        self._disarm()  # a failed write may have been retried: success is fine too
        assert closed.status == "closed" and closed.closed_at is not None
        s.status = "closed"
        s.unfinished_due = True
        with pytest.raises(SessionNotReady):
            self.sup.repl(s.id, "1")
        assert self.sup.close_session(s.id).status == "closed"  # idempotent

    @precondition(lambda self: len(self._ready()) >= 2 and self._ready(tight=False))
    @rule(pick=PICK, when=st.sampled_from(["starting", "running", "running+20ms", "running+100ms"]))
    def close_while_running(self, pick: int, when: str) -> None:
        """Closing interrupts a running execution, which ends `cancelled`.

        `starting`: close the moment the execution takes the session (its lock), before its
        row exists; the execution may then be refused (SESSION_NOT_READY or SESSION_BUSY),
        but if it runs it must end cancelled. `running`: once its row is `running`, plus a delay.
        """
        s = self._pick(self._ready(tight=False), pick)
        before = set(self._execution_ids(s.id))
        live = self.sup._live[s.id]  # white-box, only to see the moment the lock is taken
        thread, box = self._in_thread(lambda: self.sup.repl(s.id, LOOP))
        if when == "starting":
            deadline = time.monotonic() + WAIT_S
            while not live.lock.locked():
                assert time.monotonic() < deadline, "the execution never took the session"
        else:
            self._wait_running(s)
            time.sleep({"running": 0.0, "running+20ms": 0.02, "running+100ms": 0.1}[when])
        closed = self.sup.close_session(s.id)
        s.status = "closed"
        s.unfinished_due = True
        assert closed.status == "closed"
        try:
            ex = self._join(thread, box)
        except (SessionNotReady, SessionBusy):
            assert when == "starting", "an execution already running was refused"
            assert set(self._execution_ids(s.id)) == before, "a refused execution left a row"
            return
        assert ex.session_state == {"state": "closed"}, ex.session_state
        assert ex.status == "cancelled" and ex.error["kind"] == "cancelled", ex

    @precondition(lambda self: self._ready(tight=False))
    @rule(pick=PICK)
    def concurrent_execution_is_busy(self, pick: int) -> None:
        """A session runs one execution at a time: a second one gets SESSION_BUSY at once."""
        s = self._pick(self._ready(tight=False), pick)
        before = len(self._execution_ids(s.id))
        thread, box = self._in_thread(lambda: self.sup.repl(s.id, SLOW))
        self._wait_running(s)
        with pytest.raises(SessionBusy):
            self.sup.repl(s.id, "1")
        with pytest.raises(SessionBusy):
            self.sup.run_file(s.id, "plain.js")
        # Causality, not a duration: both refusals came back while the slow execution was still
        # running, so neither waited for it (and one that queued would have run, not been refused).
        running = {e.id for e in self.sup.list_executions(s.id) if e.status == "running"}
        ex = self._join(thread, box)
        assert ex.id in running, "SESSION_BUSY must not wait for the running execution"
        s.unfinished_due = True
        assert ex.status == "ok" and ex.result["json"] == "slow done", ex
        assert len(self._execution_ids(s.id)) == before + 1, "a refused execution left a row"

    @precondition(lambda self: self.since_restart >= 3)
    @rule(check=st.booleans())
    def restart(self, check: bool) -> None:
        """close() flushes every session's image; a new supervisor restores the ready ones."""
        self.since_restart = 0
        self.sup.close()
        self.sup = open_supervisor(self.db_path, self.faults, self.dir)
        for s in self.sessions.values():
            if s.status == "unsettled":
                s.status = read_db(self.db_path)["sessions"][s.id]["status"]
            s.skip_next_check = not check
            s.unfinished_due = True  # the start-up's reconcile ends leftover rows

    # ----- executions ---------------------------------------------------------------------------

    @precondition(lambda self: self._ready())
    @rule(pick=PICK, snip=FAST_SNIPPETS, check=st.booleans())
    def repl(self, pick: int, snip: Snippet, check: bool) -> None:
        s = self._pick(self._ready(), pick)
        self._executing(s, check)
        ex = self.sup.repl(s.id, snip.code)
        self._check_snippet(s, snip, ex, set())

    # Executions are what this machine is about: the same rule under more names is drawn
    # more often (hypothesis picks uniformly among the enabled rules).
    repl_more = repl
    repl_even_more = repl

    @precondition(lambda self: self._ready(tight=True))
    @rule(pick=PICK, snip=LIMIT_SNIPPETS, check=st.booleans())
    def repl_hits_limit(self, pick: int, snip: Snippet, check: bool) -> None:
        s = self._pick(self._ready(tight=True), pick)
        self._executing(s, check)
        ex = self.sup.repl(s.id, snip.code)
        self._check_snippet(s, snip, ex, set())

    @precondition(lambda self: self._ready())
    @rule(pick=PICK, op=st.sampled_from(["create_execution", "finish_execution"]),
          at=FAULT_POINT, snip=FAST_SNIPPETS, check=st.booleans(),
          times=st.sampled_from([1, 1, 2]))
    def repl_with_store_failure(self, pick: int, op: str, at: str, snip: Snippet,
                                check: bool, times: int) -> None:
        """The next write of `op` fails once (or twice: a finish and its `crashed` retry).
        The call may raise a typed error; the invariants hold either way."""
        self._repl_with_fault(pick, op, at, snip, check, times)

    @precondition(lambda self: self._ready())
    @rule(pick=PICK, at=FAULT_POINT, check=st.booleans())
    def flood_with_stream_failure(self, pick: int, at: str, check: bool) -> None:
        """The next streamed batch of events is refused once (sessions with max_events 300
        stream one batch of 256 during a flood; 40 stream none)."""
        self._repl_with_fault(pick, "append_events", at, Snippet("flood", FLOOD), check)

    def _repl_with_fault(self, pick: int, op: str, at: str, snip: Snippet, check: bool,
                         times: int = 1) -> None:
        s = self._pick(self._ready(), pick)
        self._executing(s, check)
        before = self._execution_ids(s.id)
        self._arm(op, at, times)
        try:
            ex = self.sup.repl(s.id, snip.code)
        except (StoreError, SupervisorError) as exc:
            self._failed_write_raised(s, exc, before, snip.var if snip.assigns else None,
                                      snip.value)
            return
        self._check_snippet(s, snip, ex, self._disarm())

    repl_with_store_failure_more = repl_with_store_failure

    @precondition(lambda self: self._ready())
    @rule(pick=PICK, file=RUN_FILES, n=N,
          fault=st.sampled_from([None, None, "create_execution", "finish_execution"]),
          at=FAULT_POINT, check=st.booleans())
    def run_file(self, pick: int, file: RunFile, n: int, fault: str | None, at: str,
                 check: bool) -> None:
        s = self._pick(self._ready(), pick)
        self._executing(s, check)
        path = f"files/f{self._next()}{file.suffix}"
        (self.worktree / "files").mkdir(exist_ok=True)
        (self.worktree / path).write_text(file.source())
        before = self._execution_ids(s.id)
        self._arm(fault, at)
        try:
            ex = self.sup.run_file(s.id, path, args={"n": n}, env={"n": n})
        except (StoreError, SupervisorError) as exc:
            assigns = file.kind in ("assign_args", "assign_env_module")
            self._failed_write_raised(s, exc, before, file.var if assigns else None, n)
            return
        fired = self._disarm()
        events = self._events(ex.id)
        assert ex.kind == "run_file" and ex.path == path and ex.input is None
        assert ex.args == {"n": n} and ex.env == {"n": n}
        assert events[0]["type"] == "input_echo" and events[0]["payload"]["text"] == path
        state = ex.session_state["state"]
        if fired == {"finish_execution"}:
            assert ex.status == "crashed" and ex.error["message"] == PERSIST_FAILED, ex
        elif file.kind in ("assign_args", "assign_env_module"):
            assert ex.status == "ok", ex
        elif file.kind == "throw":
            assert ex.status == "error" and ex.error["message"] == "from a file", ex
        else:
            assert ex.status == "limit_exceeded" and ex.error["kind"] == "stack_overflow", ex
        assert state == ("rolled_back" if file.kind == "overflow" else "kept"), ex.session_state
        if file.kind in ("assign_args", "assign_env_module"):
            s.vars[file.var] = n

    @rule(snip=st.sampled_from([Snippet("assign", "var x = 1; x + 1"),
                                Snippet("throw", "throw new TypeError('boom')", exc_name="TypeError"),
                                Snippet("loop", LOOP), Snippet("overflow", OVERFLOW)]))
    def one_shot_run(self, snip: Snippet) -> None:
        """An ephemeral sandbox: no session, thrown away afterwards."""
        ex = self.sup.run(code=snip.code, limits=TIGHT)
        assert ex.kind == "run" and ex.session_id is None
        assert ex.session_state == {"state": "closed"}
        expected = {"assign": "ok", "throw": "error", "loop": "timeout",
                    "overflow": "limit_exceeded"}[snip.kind]
        assert ex.status == expected, ex

    # ----- invariants ---------------------------------------------------------------------------

    @invariant()
    def no_execution_is_left_running(self) -> None:
        running = {e["id"] for e in read_db(self.db_path)["executions"] if e["status"] == "running"}
        for s in self.sessions.values():
            if s.unfinished is not None:
                if s.unfinished_due:
                    assert s.unfinished not in running, (
                        f"execution {s.unfinished}, whose end the store refused twice, is still "
                        f"running although its session {s.id} has since been "
                        f"{'closed' if s.status == 'closed' else 'used or restarted'}")
                    s.unfinished = None
                else:
                    running.discard(s.unfinished)
        assert not running, f"executions left running: {sorted(running)}"

    @invariant()
    def event_streams_match_their_rows(self) -> None:
        db = read_db(self.db_path)
        for e in db["executions"]:
            if e["status"] == "running":
                continue  # reported by no_execution_is_left_running
            events = db["events"].get(e["id"], [])
            where = f"execution {e['id']} ({e['kind']}, {e['status']})"
            assert [ev["seq"] for ev in events] == list(range(1, len(events) + 1)), where
            types = [ev["type"] for ev in events]
            assert types and types[0] == "input_echo", (where, types)
            echo = e["input"] if e["kind"] in ("repl", "run") and e["input"] is not None else e["path"]
            assert events[0]["payload"]["text"] == echo, where
            terminal = [t for t in types if t in TERMINAL_TYPES]
            assert len(terminal) == 1 and types[-1] == terminal[0], (where, types)
            assert terminal[0] in ALLOWED_TERMINAL[e["status"]], (where, types)
            assert e["ended_at"] is not None, where
            if e["status"] == "ok":
                assert e["result"] is not None and e["error"] is None, where
                assert events[-1]["payload"] == e["result"], where
            else:
                assert e["result"] is None and e["error"] is not None, where
            if e["metrics"] and "events" in e["metrics"]:
                assert e["metrics"]["events"] == len(events), (where, e["metrics"])

    @invariant()
    def rollbacks_name_their_checkpoint(self) -> None:
        """A rolled-back execution names the latest earlier execution of its session that
        kept its state: the checkpoint is taken after each one."""
        last_kept: dict[str, str | None] = {}
        for e in read_db(self.db_path)["executions"]:
            sid = e["session_id"]
            if sid is None or e["session_state"] is None:
                continue
            state = e["session_state"]
            if state["state"] == "rolled_back":
                named = state.get("checkpoint_execution_id")
                assert named == last_kept.get(sid), (
                    f"execution {e['id']} rolled back to {named!r}; the latest execution of "
                    f"session {sid} that kept its state is {last_kept.get(sid)!r}")
            elif state["state"] == "kept":
                last_kept[sid] = e["id"]

    @invariant()
    def sessions_are_settled(self) -> None:
        db = read_db(self.db_path)
        live = set(self.sup.runtime_summary().active_session_ids)
        for sid, row in db["sessions"].items():
            assert row["status"] in SESSION_END_STATES, (sid, row["status"])
            model = self.sessions.get(sid)
            assert model is not None, f"a session the model does not know: {sid}"
            if model.status == "unsettled":
                model.status = row["status"]
            assert row["status"] == model.status, (sid, row["status"], model.status)
            assert (sid in live) == (row["status"] == "ready"), (
                f"session {sid} is {row['status']} but {'' if sid in live else 'not '}live")
            if row["status"] == "closed":
                assert row["closed_at"] is not None
            if row["status"] == "crashed":
                assert row["last_error"], sid
        assert live <= set(db["sessions"])

    @invariant()
    def ready_sessions_hold_the_model_values(self) -> None:
        for s in self._ready():
            if s.skip_next_check:
                s.skip_next_check = False
                continue
            ex = self.sup.repl(s.id, READ_ALL)
            s.unfinished_due = True
            assert ex.status == "ok", ex
            assert ex.result["json"] == s.expected_json(), (
                f"session {s.id} holds {ex.result['json']}, the model says {s.expected_json()}")


LifecycleMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None, report_multiple_bugs=False,
    # No explain phase: it replays the failing example dozens of times, and a race found
    # by the machine makes that slow without telling more than the shrunk example.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLifecycle = LifecycleMachine.TestCase


@pytest.fixture(autouse=True)
def _bounded_shrinking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replaying an example of the machine takes up to a second, so shrinking a failure
    (above all a racy one) can run into hypothesis's internal 300 s shrink budget, which is
    also pytest-timeout's limit, and the failure would be reported as a timeout. Cap it."""
    from hypothesis.internal.conjecture import engine

    monkeypatch.setattr(engine, "MAX_SHRINKING_SECONDS", 45, raising=False)
