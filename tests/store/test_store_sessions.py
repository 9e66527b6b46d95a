"""Sessions: round trip, settings snapshot, listing by status, the status lifecycle."""

from __future__ import annotations

import uuid

import pytest

from store import InvalidTransition, InvalidValue, SessionNotFound, Store, TemplateNotFound
from supervisor.adapters.error_codes import api_code


def test_session_round_trip_snapshots_template_settings(store: Store) -> None:
    t = store.create_template("t", limits={"cpu_ms": 7})
    session = store.create_session(t.id, "ws-1", "deadbeef", "/work/tree")
    assert session.status == "starting" and session.closed_at is None and session.last_error is None
    assert session.settings["limits"] == {"cpu_ms": 7}
    assert store.get_session(session.id) == session
    # A later edit of the template does not reach the session's snapshot.
    store.update_settings(t.id, limits={"cpu_ms": 99})
    assert store.get_session(session.id).settings["limits"] == {"cpu_ms": 7}


def test_explicit_settings_and_id(store: Store) -> None:
    t = store.create_template("t")
    session_id = str(uuid.uuid4())
    snapshot = {"limits": {"cpu_ms": 1}, "runtime": {}, "resolver": {}}
    session = store.create_session(t.id, "w", "o", "/p", id=session_id, settings=snapshot)
    assert store.get_session(session_id).settings == snapshot == session.settings


def test_session_of_unknown_template_is_refused(store: Store) -> None:
    with pytest.raises(TemplateNotFound):
        store.create_session(str(uuid.uuid4()), "w", "o", "/p")


def test_unknown_session(store: Store) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(SessionNotFound) as raised:
        store.get_session(unknown)
    assert api_code(raised.value) == "SESSION_NOT_FOUND"
    with pytest.raises(SessionNotFound):
        store.set_session_status(unknown, "ready")


def test_list_sessions_by_status_newest_first(clocked_store: Store, clock) -> None:
    t = clocked_store.create_template("t")
    made = []
    for status in ("starting", "ready", "ready", "crashed", "ready"):
        made.append(clocked_store.create_session(t.id, "w", "o", "/p", status=status))
        clock.advance(microseconds=1)
    assert [s.id for s in clocked_store.list_sessions()] == [s.id for s in made[::-1]]
    ready = [s.id for s in made if s.status == "ready"][::-1]
    assert [s.id for s in clocked_store.list_sessions("ready")] == ready
    assert [s.id for s in clocked_store.list_sessions("ready", limit=2)] == ready[:2]
    assert clocked_store.list_sessions("closed") == []
    with pytest.raises(InvalidValue):
        clocked_store.list_sessions("sleeping")


def test_status_lifecycle_closed_is_final_and_idempotent(
    clocked_store: Store, clock
) -> None:
    t = clocked_store.create_template("t")
    session = clocked_store.create_session(t.id, "w", "o", "/p")
    ready = clocked_store.set_session_status(session.id, "ready")
    assert ready.status == "ready" and ready.closed_at is None
    crashed = clocked_store.set_session_status(session.id, "crashed", last_error="boom")
    assert crashed.last_error == "boom"
    clock.advance(seconds=1)
    closed = clocked_store.set_session_status(session.id, "closed")
    assert closed.status == "closed" and closed.closed_at == clock.now
    assert closed.last_error == "boom"  # not given: kept
    clock.advance(seconds=1)
    again = clocked_store.set_session_status(session.id, "closed")
    assert again == closed  # closing twice keeps the first closed_at
    with pytest.raises(InvalidTransition):
        clocked_store.set_session_status(session.id, "ready")
    assert clocked_store.get_session(session.id) == closed


def test_unknown_status_is_refused(store: Store) -> None:
    t = store.create_template("t")
    with pytest.raises(InvalidValue):
        store.create_session(t.id, "w", "o", "/p", status="zombie")
    session = store.create_session(t.id, "w", "o", "/p")
    with pytest.raises(InvalidValue):
        store.set_session_status(session.id, "zombie")
