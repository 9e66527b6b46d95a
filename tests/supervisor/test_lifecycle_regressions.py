"""Regression tests for the bugs the lifecycle machine (test_lifecycle_machine.py) found,
each a minimal reproduction of one, on a real supervisor and a store with the fault-injection
seam."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store import FaultInjector, StoreError
from supervisor.core import Supervisor
from supervisor.errors import SessionBusy, SessionNotReady, SupervisorError
from tests.supervisor.lifecycle_world import (
    COMPUTE,
    LOOP,
    OVERFLOW,
    WAIT_S,
    open_supervisor,
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Supervisor, FaultInjector, Path]]:
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    faults = FaultInjector()
    sup = open_supervisor(tmp_path / "vm-system.db", faults, tmp_path)
    yield sup, faults, worktree
    sup.close()  # idempotent


def _session(sup: Supervisor, worktree: Path, limits: dict[str, int] | None = None) -> str:
    template = sup.templates.create(f"t-{time.monotonic_ns()}")
    if limits:
        sup.templates.patch_settings(template.id, {"limits": limits})
    return sup.create_session(template.id, "ws", "c0ffee", str(worktree)).id


def test_bug_image_writer_makes_idle_session_busy(env: tuple[Supervisor, FaultInjector, Path]) -> None:
    """SESSION_BUSY means "another execution is running in the session" (docs/api.md).
    Was broken: the background image writer took the session's lock to capture an image, so a
    REPL arriving meanwhile was refused with SESSION_BUSY although nothing ran (~5% of REPLs
    sent right after another)."""
    sup, _, worktree = env
    sid = _session(sup, worktree)
    busy = 0
    deadline = time.monotonic() + 3.0
    i = 0
    while time.monotonic() < deadline and not busy:
        i += 1
        try:
            sup.repl(sid, f"var v_0 = {i}")  # makes the session dirty: the writer comes by
        except SessionBusy:
            busy += 1
        time.sleep(0.001)
    assert busy == 0, f"a sequential REPL got SESSION_BUSY (after {i} REPLs)"


def test_bug_close_right_after_start_is_not_cancelled(env: tuple[Supervisor, FaultInjector, Path]) -> None:
    """Closing a session interrupts its running execution, which must end `cancelled`.
    Was broken: when the close landed between the moment the execution took the session and
    the moment the sandbox armed its limit watch (`LimitWatch.begin` reset the cancel flag
    that `close_session` -> `host.cancel()` had set), the cancel was lost: the script ran on
    to its CPU limit and ended `timeout`, and close_session blocked meanwhile (~70% of the
    closes timed like this)."""
    sup, _, worktree = env
    outcomes = []
    for _ in range(30):
        sid = _session(sup, worktree, {"cpu_ms": 300, "wall_ms": 600})
        live = sup._live[sid]  # white-box: only to see the moment the lock is taken
        box: dict[str, Any] = {}

        def run(sid: str = sid, box: dict[str, Any] = box) -> None:
            try:
                box["ex"] = sup.repl(sid, LOOP)
            except BaseException as exc:
                box["ex"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + WAIT_S
        while not live.lock.locked() and time.monotonic() < deadline:
            pass  # close the moment the execution has taken the session
        sup.close_session(sid)
        thread.join(WAIT_S)
        ex = box["ex"]
        if isinstance(ex, (SessionNotReady, SessionBusy)):
            outcomes.append(type(ex).__name__)  # refused before it ran: fine
            continue
        assert not isinstance(ex, BaseException), ex
        outcomes.append(ex.status)
    assert set(outcomes) <= {"cancelled", "SessionNotReady", "SessionBusy"}, (
        f"executions closed right after they started ended: {sorted(outcomes)}")


def test_bug_rollback_names_a_checkpoint_that_is_not_an_execution(
        env: tuple[Supervisor, FaultInjector, Path], tmp_path: Path) -> None:
    """docs/api.md: session_state is rolled_back "with the checkpoint's execution id": the last
    execution that kept its state, none if there is none. Was broken: the sandbox's internal
    labels leaked: "initial" (nothing ran yet), "image" (the first rollback after a restart;
    then the id of the last execution even when it had been rolled back itself) and
    "eval-<n>" (a run_file rolled back to the checkpoint taken when its `args`/`env` globals
    were defined)."""
    sup, faults, worktree = env
    (worktree / "overflow.js").write_text(OVERFLOW)
    sid = _session(sup, worktree)
    labels = {}
    labels["fresh session"] = sup.repl(sid, OVERFLOW).session_state
    first = sup.repl(sid, "var v_0 = 1")
    labels["run_file"] = sup.run_file(sid, "overflow.js").session_state
    sup.close()
    sup2 = open_supervisor(tmp_path / "vm-system.db", faults, tmp_path)
    try:
        labels["after restart"] = sup2.repl(sid, OVERFLOW).session_state
    finally:
        sup2.close()
    expected = {"fresh session": None, "run_file": first.id, "after restart": first.id}
    got = {k: v.get("checkpoint_execution_id") for k, v in labels.items()}
    assert got == expected


@pytest.mark.parametrize("times", [1, 2])
def test_bug_failed_close_leaves_an_inconsistent_session(
        env: tuple[Supervisor, FaultInjector, Path], times: int) -> None:
    """When close_session cannot record `closed` (`times` failed writes in a row; one is
    retried), the session must stay consistent: closed and gone, or ready, live and usable.

    Was broken twice: first the session stayed `ready` in the store but was gone from the
    process (SESSION_NOT_READY "session ... is ready"); then, with the store written first,
    it stayed ready and live but its sandbox kept the sticky cancel close_session had set
    (`host.cancel()` -> `Sandbox.cancel(also_later=True)`), so every later execution that
    reached an interrupt check ended `cancelled`."""
    sup, faults, worktree = env
    sid = _session(sup, worktree)
    faults.fail_next("set_session_status", times=times)
    with contextlib.suppress(StoreError, SupervisorError):  # a typed error is fine
        sup.close_session(sid)
    faults.clear()
    status = sup.get_session(sid).status
    live = sid in sup.runtime_summary().active_session_ids
    assert (status == "ready") == live, f"session is {status} and {'' if live else 'not '}live"
    if live:
        ex = sup.repl(sid, COMPUTE)
        assert ex.status == "ok", f"the close failed, the session is ready, and a REPL ends {ex.status}"


def test_bug_failed_crash_record_leaves_session_starting(
        env: tuple[Supervisor, FaultInjector, Path]) -> None:
    """A spawn whose startup file throws must leave the session `crashed`. Was broken: when
    the write recording the crash failed (once), create_session raised StoreWriteError and the
    session stayed `starting` (not live) until the next start-up's reconcile."""
    sup, faults, worktree = env
    (worktree / "bad.js").write_text("throw new Error('bad startup')")
    template = sup.templates.create("bad")
    sup.templates.add_startup_file(template.id, "bad.js")
    faults.fail_next("set_session_status")
    with pytest.raises((SupervisorError, StoreError)):
        sup.create_session(template.id, "ws", "c0ffee", str(worktree))
    statuses = [s.status for s in sup.list_sessions()]
    assert statuses == ["crashed"], f"after a failed spawn the session is {statuses}"


def _session_with_an_unfinished_execution(
        env: tuple[Supervisor, FaultInjector, Path]) -> tuple[Supervisor, str]:
    """A session whose one execution's end the store refused twice (the record and its
    `crashed` retry): the row stays `running`, the disk is healthy again."""
    sup, faults, worktree = env
    sid = _session(sup, worktree)
    faults.fail_next("finish_execution", times=2)
    with pytest.raises(SupervisorError):
        sup.repl(sid, "var v_0 = 1")
    faults.clear()
    return sup, sid


def test_bug_double_finish_failure_wedges_the_session(
        env: tuple[Supervisor, FaultInjector, Path]) -> None:
    """When finishing an execution fails twice (the record and its `crashed` retry), the
    caller gets PersistenceFailed and the row stays `running` for now. Was broken: once the
    disk was healthy again the session still reported `ready`, but every execution in it was
    refused with the store's SESSION_BUSY (the unique index on running executions) until the
    daemon restarted."""
    sup, sid = _session_with_an_unfinished_execution(env)
    status = sup.get_session(sid).status
    try:
        ex = sup.repl(sid, "v_0")
    except (StoreError, SupervisorError) as exc:
        pytest.fail(f"the disk is healthy again, the session is {status}, and a REPL gets "
                    f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
    assert ex.status == "ok"


def test_bug_unfinished_execution_outlives_its_closed_session(
        env: tuple[Supervisor, FaultInjector, Path]) -> None:
    """An execution whose end the store refused twice stays `running` until its session's
    next execution records it first. A session that is closed instead never runs again, so
    its execution stays `running` in a closed session for as long as the daemon lives (only
    the next start-up's reconcile ends it). The same holds for a one-shot run when no other
    run follows."""
    sup, sid = _session_with_an_unfinished_execution(env)
    sup.close_session(sid)
    statuses = [e.status for e in sup.list_executions(sid)]
    assert "running" not in statuses, f"the closed session's executions: {statuses}"


def test_bug_graceful_restart_loses_the_events_of_an_unfinished_execution(
        env: tuple[Supervisor, FaultInjector, Path], tmp_path: Path) -> None:
    """An execution whose end the store refused twice keeps its events in the pipeline's
    memory until its session runs again. A graceful close of the supervisor drops them: the
    next start-up's reconcile ends the row as DaemonStopped with one `exception` event and no
    `input_echo` (DESIGN.md: input_echo is the first event of every execution), although the
    disk was healthy again at the close."""
    sup, sid = _session_with_an_unfinished_execution(env)
    faults = env[1]
    sup.close()
    sup2 = open_supervisor(tmp_path / "vm-system.db", faults, tmp_path)
    try:
        (ex,) = sup2.list_executions(sid)
        types = [e.type for e in sup2.list_events(ex.id)]
    finally:
        sup2.close()
    assert ex.status != "running"
    assert types[0] == "input_echo", f"the execution ended {ex.status} with events {types}"
