"""Reconciliation after a crash, and retention."""

from __future__ import annotations

from datetime import timedelta

import pytest

from store import (
    DAEMON_STOPPED_ERROR,
    ExecutionNotFound,
    FaultInjector,
    InvalidValue,
    NewEvent,
    PruneReport,
    Store,
    StoreWriteError,
)
from supervisor.adapters.error_codes import api_code

VALUE = {"type": "number", "preview": "1"}


def test_reconcile_crashes_what_a_dead_daemon_left_running(
    store: Store, template, finish, db_path, check_consistency
) -> None:
    ready = store.create_session(template.id, "w", "o", "/p", status="ready")
    starting = store.create_session(template.id, "w", "o", "/p", status="starting")
    streamed = store.create_execution("repl", session_id=ready.id, input="while(1){}")
    store.append_events(streamed.id, [NewEvent(1, "input_echo", {"text": "x"}),
                                      NewEvent(2, "console", {"level": "log", "text": "a"})])
    silent = store.create_execution("startup", session_id=starting.id, path="init.js")
    one_shot = store.create_execution("run", input="1")
    done = store.create_execution("run", input="2")
    finish(store, done.id)

    report = store.reconcile()

    assert set(report.crashed_executions) == {streamed.id, silent.id, one_shot.id}
    assert report.crashed_sessions == [starting.id]
    assert report.changed
    for execution_id, terminal_seq in ((streamed.id, 3), (silent.id, 1), (one_shot.id, 1)):
        crashed = store.get_execution(execution_id)
        assert crashed.status == "crashed" and crashed.ended_at is not None
        assert crashed.error == DAEMON_STOPPED_ERROR and crashed.result is None
        events = store.list_events(execution_id)
        assert [e.seq for e in events][-1] == terminal_seq
        assert events[-1].type == "exception"
        assert events[-1].payload["name"] == "DaemonStopped"
    assert store.get_execution(done.id).status == "ok"
    assert store.get_session(ready.id).status == "ready"  # restoring it is the supervisor's call
    crashed_session = store.get_session(starting.id)
    assert crashed_session.status == "crashed" and "daemon stopped" in crashed_session.last_error
    assert check_consistency(db_path) == []

    again = store.reconcile()
    assert again.crashed_executions == [] and again.crashed_sessions == [] and not again.changed


def _history(store: Store, session_id: str | None, count: int, clock, events: int = 3):
    made = []
    for i in range(count):
        execution = store.create_execution("repl" if session_id else "run",
                                           session_id=session_id, input=str(i))
        if events > 1:
            store.append_events(execution.id, [NewEvent(s, "console", {"text": str(s)})
                                               for s in range(1, events)])
        store.finish_execution(execution.id, "ok", result=VALUE,
                               remaining_events=[NewEvent(events, "value", VALUE)])
        made.append(execution.id)
        clock.advance(minutes=1)
    return made


def test_prune_by_age_never_touches_running_rows(clocked_store: Store, clock) -> None:
    store = clocked_store
    t = store.create_template("t")
    session = store.create_session(t.id, "w", "o", "/p", status="ready")
    old = _history(store, session.id, 4, clock)
    stuck = store.create_execution("run", input="old and still running")
    clock.advance(days=2)
    recent = _history(store, session.id, 2, clock)

    report = store.prune(older_than=timedelta(days=1))

    assert report == PruneReport(executions=4, events=12, images=0, batches=report.batches)
    assert [e.id for e in store.list_executions(session.id)] == recent[::-1]
    assert store.get_execution(stuck.id).status == "running"
    assert not any(_exists(store, pruned) for pruned in old)


def test_prune_keeps_the_newest_per_session(clocked_store: Store, clock) -> None:
    store = clocked_store
    t = store.create_template("t")
    a = store.create_session(t.id, "w", "o", "/p", status="ready")
    b = store.create_session(t.id, "w", "o", "/p", status="ready")
    a_ids = _history(store, a.id, 5, clock)
    b_ids = _history(store, b.id, 2, clock)
    runs = _history(store, None, 4, clock)  # session-less runs prune as one group
    a_running = store.create_execution("repl", session_id=a.id, input="live")

    report = store.prune(keep_per_session=2)

    # The running one counts among the newest two of `a` but is never deleted.
    assert [e.id for e in store.list_executions(a.id)] == [a_running.id, a_ids[-1]]
    assert [e.id for e in store.list_executions(b.id)] == b_ids[::-1]
    assert report.executions == 4 + 2
    assert [_exists(store, run) for run in runs] == [False, False, True, True]


def test_prune_deletes_small_executions_whole_in_bounded_batches(
    db_path, clock, check_consistency
) -> None:
    faults = FaultInjector()
    with Store.open(db_path, clock=clock, faults=faults) as store:
        ids = _history(store, None, 30, clock, events=10)
        clock.advance(days=3)
        # 30 executions x (10 events + 1 row) with 25 rows per batch: two per transaction.
        faults.fail_next("prune", after=5)
        with pytest.raises(StoreWriteError) as raised:
            store.prune(older_than=timedelta(days=1), batch_size=25)
        assert api_code(raised.value) == "INTERNAL"
        # Five batches committed, whole executions each; the sixth left nothing half-done.
        left = [i for i in ids if _exists(store, i)]
        assert left == ids[10:]
        assert check_consistency(db_path) == []

        report = store.prune(older_than=timedelta(days=1), batch_size=25)
        assert report == PruneReport(executions=20, events=200, images=0, batches=10)
        assert check_consistency(db_path) == []


def test_prune_empties_a_chatty_execution_over_several_batches(db_path, clock) -> None:
    faults = FaultInjector()
    with Store.open(db_path, clock=clock, faults=faults) as store:
        big = store.create_execution("run", input="chatty")
        streamed = [NewEvent(s, "console", {}) for s in range(1, 1250)]
        for start in range(0, len(streamed), 250):
            store.append_events(big.id, streamed[start : start + 250])
        store.finish_execution(big.id, "ok", result=VALUE,
                               remaining_events=[NewEvent(1250, "value", VALUE)])
        clock.advance(days=3)

        faults.fail_next("prune", after=3)
        with pytest.raises(StoreWriteError):
            store.prune(older_than=timedelta(days=1), batch_size=100)
        # Oldest first: what is left is the tail of the stream, terminal event included.
        assert [e.seq for e in store.list_events(big.id)] == list(range(301, 1251))

        report = store.prune(older_than=timedelta(days=1), batch_size=100)
        assert (report.executions, report.events) == (1, 950)
        assert report.batches == 10  # 9 full batches of events, then the rest with the row
        assert not _exists(store, big.id)


def test_prune_images_keeps_the_latest_per_session(clocked_store: Store, clock) -> None:
    store = clocked_store
    t = store.create_template("t")
    a = store.create_session(t.id, "w", "o", "/p", status="ready")
    b = store.create_session(t.id, "w", "o", "/p", status="ready")
    execution_ids = _history(store, a.id, 1, clock)
    for _ in range(4):
        _image(store, a.id, execution_ids[0])
    b_only = _image(store, b.id)
    clock.advance(days=10)
    a_fresh = _image(store, a.id)

    report = store.prune(older_than=timedelta(days=1))
    # b's only image is old but the latest of b; a keeps only the fresh one.
    assert [i.id for i in store.list_images(b.id)] == [b_only]
    assert [i.id for i in store.list_images(a.id)] == [a_fresh]
    assert report.images == 4 and report.executions == 1

    more = [_image(store, a.id) for _ in range(3)]
    report = store.prune(keep_per_session=0)  # zero still keeps the newest image
    assert [i.id for i in store.list_images(a.id)] == [more[-1]]
    assert report.images == 3


def test_pruning_an_execution_keeps_images_taken_after_it(clocked_store: Store, clock) -> None:
    store = clocked_store
    t = store.create_template("t")
    session = store.create_session(t.id, "w", "o", "/p", status="ready")
    [execution_id] = _history(store, session.id, 1, clock)
    image_id = _image(store, session.id, execution_id)
    store.prune(keep_per_session=0)
    assert not _exists(store, execution_id)
    kept = store.get_image(image_id)
    assert kept.execution_id is None and kept.data == b"memory"


def test_prune_arguments(store: Store) -> None:
    assert store.prune() == PruneReport(0, 0, 0, 0)
    with pytest.raises(InvalidValue):
        store.prune(older_than=timedelta(seconds=-1))
    with pytest.raises(InvalidValue):
        store.prune(keep_per_session=-1)
    with pytest.raises(InvalidValue):
        store.prune(keep_per_session=1, batch_size=0)


def _image(store: Store, session_id: str, execution_id: str | None = None) -> str:
    return store.save_image(session_id, b"memory", format_version=1, guest_sha256="h",
                            memory_size=6, execution_id=execution_id).id


def _exists(store: Store, execution_id: str) -> bool:
    try:
        store.get_execution(execution_id)
    except ExecutionNotFound:
        return False
    return True
