"""Fixtures of the store tests: real SQLite files under tmp_path, nothing mocked."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store import NewEvent, Session, Store, Template
from vocabulary import TERMINAL_EVENT_TYPES, TERMINAL_FOR_STATUS


class SteppingClock:
    """A settable clock: tests decide when time moves, so ties and ages are deterministic."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "vm-system.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as opened:
        yield opened


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def clocked_store(db_path: Path, clock: SteppingClock) -> Iterator[Store]:
    with Store.open(db_path, clock=clock) as opened:
        yield opened


@pytest.fixture
def template(store: Store) -> Template:
    return store.create_template("base")


@pytest.fixture
def session(store: Store, template: Template) -> Session:
    return store.create_session(template.id, "ws-1", "c0ffee", "/tmp/wt", status="ready")


def finish_ok(store: Store, execution_id: str, first_seq: int = 1, **kwargs):
    """Finish with the smallest valid tail: a `value` event numbered `first_seq`."""
    value = {"type": "number", "preview": "2", "json": 2}
    return store.finish_execution(
        execution_id,
        "ok",
        result=value,
        remaining_events=[NewEvent(first_seq, "value", value)],
        **kwargs,
    )


@pytest.fixture
def finish() -> Callable[..., object]:
    return finish_ok


def consistency_problems(path: Path) -> list[str]:
    """Every invariant of a store file that a crash must never break, checked on raw SQL.

    Returns the problems found (empty: consistent) rather than asserting, so a test can
    report all of them at once.
    """
    problems: list[str] = []
    conn = sqlite3.connect(str(path))
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        if integrity != [("ok",)]:
            problems.append(f"integrity_check: {integrity}")
        dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
        if dangling:
            problems.append(f"foreign_key_check: {dangling[:5]}")
        executions = conn.execute("SELECT id, status, result, error FROM executions").fetchall()
        events: dict[str, list[tuple[int, str]]] = {}
        for execution_id, seq, type_ in conn.execute(
            "SELECT execution_id, seq, type FROM events ORDER BY execution_id, seq"
        ):
            events.setdefault(execution_id, []).append((seq, type_))
        for execution_id, status, result, error in executions:
            stream = events.get(execution_id, [])
            seqs = [seq for seq, _ in stream]
            if seqs != list(range(1, len(seqs) + 1)):
                problems.append(f"{execution_id}: seqs {seqs[:10]}... not 1..n")
            terminal = [type_ for _, type_ in stream if type_ in TERMINAL_EVENT_TYPES]
            if status == "running":
                if terminal:
                    problems.append(f"{execution_id}: running with terminal events {terminal}")
                continue
            if len(terminal) != 1 or stream[-1][1] != terminal[0]:
                problems.append(f"{execution_id}: {status} with terminal events {terminal}")
            elif terminal[0] not in TERMINAL_FOR_STATUS[status]:
                problems.append(f"{execution_id}: {status} ends with {terminal[0]}")
            if (status == "ok") != (result is not None) or (status != "ok") != (error is not None):
                problems.append(f"{execution_id}: {status} with result={result} error={error}")
    finally:
        conn.close()
    return problems


@pytest.fixture
def check_consistency() -> Callable[[Path], list[str]]:
    return consistency_problems
