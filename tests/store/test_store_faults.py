"""A write that fails surfaces as a typed error and leaves nothing half-written.

The FaultInjector makes the real store's transaction fail right before COMMIT (every
statement of the operation has run) or right after BEGIN.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from store import FaultInjector, NewEvent, Store, StoreWriteError
from supervisor.adapters.error_codes import api_code

VALUE = {"type": "number", "preview": "1"}


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def faulty(db_path: Path, clock):
    faults = FaultInjector()
    with Store.open(db_path, faults=faults, clock=clock) as store:
        t = store.create_template("t")
        store.add_module(t.id, "path")
        store.add_library(t.id, "lib")
        cap = store.add_capability(t.id, "fs", "read")
        startup = store.add_startup_file(t.id, "init.js")
        session = store.create_session(t.id, "w", "o", "/p", status="ready")
        running = store.create_execution("repl", session_id=session.id, input="1")
        store.append_events(running.id, [NewEvent(1, "input_echo", {"text": "1"})])
        old = store.create_execution("run", input="old")
        store.finish_execution(old.id, "ok", result=VALUE, remaining_events=[NewEvent(1, "value", VALUE)])
        clock.advance(days=2)
        ctx = {"t": t, "cap": cap, "startup": startup, "session": session,
               "running": running, "old": old}
        yield store, faults, ctx


OPERATIONS: dict[str, Callable] = {
    "create_template": lambda s, c: s.create_template("new", limits={"cpu_ms": 1}),
    "update_settings": lambda s, c: s.update_settings(c["t"].id, limits={"cpu_ms": 1}),
    "delete_template": lambda s, c: s.delete_template(c["t"].id),
    "add_capability": lambda s, c: s.add_capability(c["t"].id, "net", "fetch"),
    "delete_capability": lambda s, c: s.delete_capability(c["t"].id, c["cap"].id),
    "add_startup_file": lambda s, c: s.add_startup_file(c["t"].id, "b.js"),
    "delete_startup_file": lambda s, c: s.delete_startup_file(c["t"].id, c["startup"].id),
    "add_module": lambda s, c: s.add_module(c["t"].id, "url"),
    "remove_module": lambda s, c: s.remove_module(c["t"].id, "path"),
    "add_library": lambda s, c: s.add_library(c["t"].id, "other"),
    "remove_library": lambda s, c: s.remove_library(c["t"].id, "lib"),
    "create_session": lambda s, c: s.create_session(c["t"].id, "w", "o", "/p"),
    "set_session_status": lambda s, c: s.set_session_status(c["session"].id, "closed"),
    "create_execution": lambda s, c: s.create_execution("run", input="x"),
    "append_events": lambda s, c: s.append_events(
        c["running"].id, [NewEvent(2, "console", {}), NewEvent(3, "console", {})]),
    "finish_execution": lambda s, c: s.finish_execution(
        c["running"].id, "ok", result=VALUE,
        remaining_events=[NewEvent(2, "console", {}), NewEvent(3, "value", VALUE)]),
    "save_image": lambda s, c: s.save_image(
        c["session"].id, b"img", format_version=1, guest_sha256="h", memory_size=3),
    "reconcile": lambda s, c: s.reconcile(),
    "prune": lambda s, c: s.prune(older_than=timedelta(days=1)),
}


@pytest.mark.parametrize("at", ["commit", "begin"])
@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_a_failed_write_is_typed_and_leaves_nothing(faulty, db_path: Path, op: str, at) -> None:
    store, faults, ctx = faulty
    before = _dump(db_path)
    faults.fail_next(op, at=at)

    with pytest.raises(StoreWriteError) as raised:
        OPERATIONS[op](store, ctx)

    assert api_code(raised.value) == "INTERNAL"
    assert raised.value.op == op
    assert isinstance(raised.value.cause, sqlite3.OperationalError)
    assert faults.fired == [(op, at)]
    assert _dump(db_path) == before
    # The store is still usable and the same write now goes through.
    OPERATIONS[op](store, ctx)
    assert _dump(db_path) != before


def test_a_non_sqlite_failure_also_rolls_back_and_propagates(faulty, db_path: Path) -> None:
    store, faults, ctx = faulty
    before = _dump(db_path)
    faults.fail_next("finish_execution", error=RuntimeError("power cut"))
    with pytest.raises(RuntimeError, match="power cut"):
        OPERATIONS["finish_execution"](store, ctx)
    assert _dump(db_path) == before
    assert store.get_execution(ctx["running"].id).status == "running"


def test_faults_target_only_the_named_operation(faulty) -> None:
    store, faults, ctx = faulty
    faults.fail_next("finish_execution")
    store.append_events(ctx["running"].id, [NewEvent(2, "console", {})])  # not armed
    with pytest.raises(StoreWriteError):
        store.finish_execution(ctx["running"].id, "ok", result=VALUE,
                               remaining_events=[NewEvent(3, "value", VALUE)])
    assert [e.seq for e in store.list_events(ctx["running"].id)] == [1, 2]
