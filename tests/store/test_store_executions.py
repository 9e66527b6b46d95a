"""Executions and events: round trips, the pipeline invariants, ordering and pagination."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from store import (
    EventSequenceError,
    ExecutionNotFound,
    ExecutionNotRunning,
    InvalidValue,
    InvariantViolation,
    NewEvent,
    SessionBusy,
    SessionNotFound,
    Store,
)
from supervisor.adapters.error_codes import api_code

VALUE = {"type": "number", "preview": "2", "json": 2}
ERROR = {"kind": "exception", "name": "TypeError", "message": "x is not a function"}


def test_execution_round_trip(clocked_store: Store, clock) -> None:
    t = clocked_store.create_template("t")
    session = clocked_store.create_session(t.id, "w", "o", "/p", status="ready")
    execution_id = str(uuid.uuid4())
    created = clocked_store.create_execution(
        "run_file",
        session_id=session.id,
        path="main.js",
        args={"n": 1},
        env={"MODE": "test"},
        id=execution_id,
    )
    assert created.id == execution_id and created.status == "running"
    assert created.started_at == clock.now  # microseconds survive the round trip
    assert clocked_store.get_execution(execution_id) == created

    clock.advance(milliseconds=1.5)
    ts = datetime(2026, 11, 25, 13, 0, 0, 1, tzinfo=timezone(timedelta(hours=2)))
    clocked_store.append_events(
        execution_id,
        [
            NewEvent(1, "input_echo", {"text": "main.js"}),
            NewEvent(2, "console", {"level": "log", "text": "hé ✓"}, ts=ts),
        ],
    )
    finished = clocked_store.finish_execution(
        execution_id,
        "ok",
        result=VALUE,
        metrics={"wall_ms": 1.5, "events": 3},
        session_state={"state": "kept"},
        remaining_events=[NewEvent(3, "value", VALUE)],
    )
    assert finished.status == "ok" and finished.result == VALUE and finished.error is None
    assert finished.ended_at == clock.now
    assert finished.metrics == {"wall_ms": 1.5, "events": 3}
    assert finished.session_state == {"state": "kept"}
    assert clocked_store.get_execution(execution_id) == finished

    events = clocked_store.list_events(execution_id)
    assert [(e.seq, e.type) for e in events] == [(1, "input_echo"), (2, "console"), (3, "value")]
    assert events[0].ts == clock.now  # no ts given: stamped by the store's clock
    assert events[1].ts == ts and events[1].ts.utcoffset() == timedelta(0)  # stored in UTC
    assert events[1].payload == {"level": "log", "text": "hé ✓"}
    assert all(e.execution_id == execution_id for e in events)


def test_one_shot_run_has_no_session_and_is_not_limited(store: Store, finish) -> None:
    first = store.create_execution("run", input="1+1")
    second = store.create_execution("run", input="2+2")  # two running at once: allowed
    assert first.session_id is None
    finish(store, first.id)
    assert store.get_execution(first.id).status == "ok"
    assert store.get_execution(second.id).status == "running"


def test_one_running_execution_per_session(store: Store, session, finish) -> None:
    running = store.create_execution("repl", session_id=session.id, input="1")
    with pytest.raises(SessionBusy) as raised:
        store.create_execution("repl", session_id=session.id, input="2")
    assert api_code(raised.value) == "SESSION_BUSY"
    finish(store, running.id)
    store.create_execution("repl", session_id=session.id, input="2")


def test_unknown_references(store: Store) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(SessionNotFound):
        store.create_execution("repl", session_id=unknown, input="1")
    with pytest.raises(ExecutionNotFound) as raised:
        store.get_execution(unknown)
    assert api_code(raised.value) == "EXECUTION_NOT_FOUND"
    with pytest.raises(ExecutionNotFound):
        store.list_events(unknown)
    with pytest.raises(ExecutionNotFound):
        store.append_events(unknown, [NewEvent(1, "console", {})])
    with pytest.raises(ExecutionNotFound):
        store.finish_execution(unknown, "ok", result=VALUE, remaining_events=[NewEvent(1, "value", VALUE)])
    with pytest.raises(SessionNotFound):
        store.list_executions(unknown)


def test_unknown_kind_and_naive_time_are_refused(store: Store) -> None:
    with pytest.raises(InvalidValue):
        store.create_execution("shell")
    with pytest.raises(InvalidValue):
        store.create_execution("run", started_at=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("status", "result", "error", "events"),
    [
        ("ok", VALUE, None, []),  # no terminal event
        ("ok", VALUE, None, [NewEvent(1, "value", VALUE), NewEvent(2, "value", VALUE)]),
        ("ok", VALUE, None, [NewEvent(1, "value", VALUE), NewEvent(2, "console", {})]),
        ("ok", VALUE, None, [NewEvent(1, "exception", ERROR)]),  # wrong terminal for ok
        ("ok", None, None, [NewEvent(1, "value", VALUE)]),  # ok without result
        ("error", None, ERROR, [NewEvent(1, "value", VALUE)]),
        ("error", None, None, [NewEvent(1, "exception", ERROR)]),  # error without error
        ("timeout", None, ERROR, [NewEvent(1, "exception", ERROR)]),  # timeout ends with limit
        ("running", None, None, [NewEvent(1, "value", VALUE)]),
    ],
)
def test_finish_refuses_to_break_the_terminal_event_invariant(
    store: Store, status, result, error, events
) -> None:
    execution = store.create_execution("run", input="x")
    with pytest.raises((InvariantViolation, InvalidValue)) as raised:
        store.finish_execution(execution.id, status, result=result, error=error, remaining_events=events)
    assert api_code(raised.value) in ("INTERNAL", "VALIDATION_ERROR")
    assert store.get_execution(execution.id).status == "running"
    assert store.list_events(execution.id) == []


@pytest.mark.parametrize(
    ("status", "terminal"),
    [("error", "exception"), ("timeout", "limit"), ("limit_exceeded", "limit"),
     ("cancelled", "exception"), ("cancelled", "limit"), ("crashed", "exception")],
)
def test_finish_with_error_statuses(store: Store, status, terminal) -> None:
    execution = store.create_execution("run", input="x")
    payload = ERROR if terminal == "exception" else {"kind": "cpu_limit", "message": "m", "limit": {}}
    finished = store.finish_execution(
        execution.id, status, error=ERROR, remaining_events=[NewEvent(1, terminal, payload)]
    )
    assert (finished.status, finished.error, finished.result) == (status, ERROR, None)
    assert [e.type for e in store.list_events(execution.id)] == [terminal]


def test_terminal_events_cannot_be_streamed(store: Store) -> None:
    execution = store.create_execution("run", input="x")
    with pytest.raises(InvariantViolation):
        store.append_events(execution.id, [NewEvent(1, "value", VALUE)])
    assert store.list_events(execution.id) == []


def test_seq_must_continue_without_gap_or_duplicate(store: Store) -> None:
    execution = store.create_execution("run", input="x")
    store.append_events(execution.id, [NewEvent(1, "console", {}), NewEvent(2, "console", {})])
    for bad in ([NewEvent(2, "console", {})], [NewEvent(4, "console", {})],
                [NewEvent(3, "console", {}), NewEvent(3, "console", {})],
                [NewEvent(0, "console", {})]):
        with pytest.raises(EventSequenceError):
            store.append_events(execution.id, bad)
    # A refused batch leaves nothing behind, not even its valid first rows.
    assert [e.seq for e in store.list_events(execution.id)] == [1, 2]
    with pytest.raises(EventSequenceError):
        store.finish_execution(
            execution.id, "ok", result=VALUE,
            remaining_events=[NewEvent(3, "console", {}), NewEvent(5, "value", VALUE)],
        )
    assert store.get_execution(execution.id).status == "running"
    assert [e.seq for e in store.list_events(execution.id)] == [1, 2]


def test_finished_execution_is_closed_for_writes(store: Store, finish) -> None:
    execution = store.create_execution("run", input="x")
    finish(store, execution.id)
    with pytest.raises(ExecutionNotRunning):
        store.append_events(execution.id, [NewEvent(2, "console", {})])
    with pytest.raises(ExecutionNotRunning):
        finish(store, execution.id, first_seq=2)
    assert [e.seq for e in store.list_events(execution.id)] == [1]


def test_unknown_event_type_is_refused(store: Store) -> None:
    execution = store.create_execution("run", input="x")
    with pytest.raises(InvalidValue):
        store.append_events(execution.id, [NewEvent(1, "stdout", {})])
    with pytest.raises(InvalidValue):
        store.append_events(execution.id, [NewEvent(1, "console", {"bad": object()})])


def test_list_executions_newest_first_and_paginated(clocked_store: Store, clock, finish) -> None:
    t = clocked_store.create_template("t")
    session = clocked_store.create_session(t.id, "w", "o", "/p", status="ready")
    other = clocked_store.create_session(t.id, "w", "o", "/p", status="ready")
    made = []
    for i in range(12):
        made.append(clocked_store.create_execution("repl", session_id=session.id, input=str(i)))
        finish(clocked_store, made[-1].id)
        if i % 4 == 3:  # groups of four share one microsecond: the tie-break must hold
            clock.advance(microseconds=1)
    clocked_store.create_execution("repl", session_id=other.id, input="elsewhere")
    expected = [e.id for e in made[::-1]]

    assert [e.id for e in clocked_store.list_executions(session.id)] == expected
    assert [e.id for e in clocked_store.list_executions(session.id, limit=5)] == expected[:5]
    pages, before = [], None
    while True:
        page = clocked_store.list_executions(session.id, limit=5, before=before)
        if not page:
            break
        pages.append([e.id for e in page])
        before = page[-1].id
    assert [len(p) for p in pages] == [5, 5, 2]
    assert sum(pages, []) == expected
    assert clocked_store.list_executions(session.id, limit=0) == []
    with pytest.raises(ExecutionNotFound):
        clocked_store.list_executions(session.id, before=str(uuid.uuid4()))


def test_default_limit_is_50(store: Store, session, finish) -> None:
    for i in range(55):
        execution = store.create_execution("repl", session_id=session.id, input=str(i))
        finish(store, execution.id)
    assert len(store.list_executions(session.id)) == 50


def test_events_after_seq_on_ten_thousand_events(store: Store) -> None:
    execution = store.create_execution("run", input="loop")
    total = 10_000
    batch = [NewEvent(seq, "console", {"level": "log", "text": f"line {seq}"})
             for seq in range(1, total)]
    for start in range(0, len(batch), 1000):
        store.append_events(execution.id, batch[start : start + 1000])
    store.finish_execution(
        execution.id, "ok", result=VALUE, remaining_events=[NewEvent(total, "value", VALUE)]
    )

    seen, cursor = [], 0
    while True:
        page = store.list_events(execution.id, after_seq=cursor, limit=333)
        if not page:
            break
        assert len(page) == min(333, total - cursor)
        seen += [e.seq for e in page]
        cursor = page[-1].seq
    assert seen == list(range(1, total + 1))

    middle = store.list_events(execution.id, after_seq=4321, limit=100)
    assert [e.seq for e in middle] == list(range(4322, 4422))
    assert middle[0].payload == {"level": "log", "text": "line 4322"}
    assert [e.seq for e in store.list_events(execution.id, after_seq=9_998)] == [9_999, 10_000]
    assert store.list_events(execution.id, after_seq=total) == []
    assert store.list_events(execution.id, after_seq=total + 50, limit=10) == []
    assert len(store.list_events(execution.id)) == total


def test_events_of_an_execution_without_events(store: Store) -> None:
    execution = store.create_execution("run", input="x")
    assert store.list_events(execution.id) == []
