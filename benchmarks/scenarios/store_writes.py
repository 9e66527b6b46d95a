"""The store alone (SQLite through store/, WAL mode, `synchronous=NORMAL` as the daemon runs it,
on a real file): finishing an execution with its 100 events in one transaction, appending
events one transaction each (a live stream; also with `synchronous=FULL`, the durability
trade-off), and reading a page of 100 events from deep inside a long execution (1,000,000
events; 50,000 in quick mode). Every write is read back and every page checked."""

from __future__ import annotations

import random
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.engines import VM
from benchmarks.harness import Measured, Scenario, Setup
from benchmarks.timing import CheckFailed, Plan, Sampler
from store import NewEvent, Store

VALUE = {"type": "number", "preview": "2", "json": 2}
LINE = {"level": "log", "text": "tick 12345: the quick brown fox jumps over the lazy dog"}
APPENDS = 500  # events appended one by one in a sample
POPULATE_BATCH = 10_000


def _session(store: Store, name: str) -> str:
    template = store.create_template(name)
    return store.create_session(template.id, "bench", "0" * 40, "/tmp/bench", status="ready").id


@dataclass
class _Pending:
    execution_id: str
    events: list[Any]


def _finish_rows(store: Store) -> Sampler[Any]:
    session_id = _session(store, "bench-finish")

    def before() -> _Pending:
        execution = store.create_execution("repl", session_id=session_id, input="work()")
        events = [NewEvent(seq, "console", LINE) for seq in range(1, 100)]
        events.append(NewEvent(100, "value", VALUE))
        return _Pending(execution.id, events)

    def finish(p: _Pending) -> str:
        store.finish_execution(p.execution_id, "ok", result=VALUE,
                               metrics={"wall_ms": 1.0, "cpu_ms": 1.0, "events": 100},
                               session_state={"state": "kept"}, remaining_events=p.events)
        return p.execution_id

    def check(execution_id: str) -> None:
        events = store.list_events(execution_id, limit=1000)
        if [e.seq for e in events] != list(range(1, 101)) or events[-1].type != "value":
            raise CheckFailed(f"execution {execution_id}: {len(events)} events read back, "
                              "expected seq 1..100 ending with the value")

    return Sampler(finish, before=before, check=check)


def _append_rows(store: Store) -> Sampler[Any]:
    def before() -> _Pending:
        execution = store.create_execution("run", input="stream()")
        # Built before the clock starts: the sandbox hands events over ready-made.
        return _Pending(execution.id, [[NewEvent(seq, "console", LINE)]
                                       for seq in range(1, APPENDS + 1)])

    def append(p: _Pending) -> str:
        add = store.append_events
        for event in p.events:
            add(p.execution_id, event)
        return p.execution_id

    def check(execution_id: str) -> None:
        events = store.list_events(execution_id, limit=APPENDS + 1)
        if [e.seq for e in events] != list(range(1, APPENDS + 1)):
            raise CheckFailed(f"execution {execution_id}: {len(events)} events read back, "
                              f"expected seq 1..{APPENDS}")

    def after(p: _Pending) -> None:
        store.finish_execution(p.execution_id, "ok", result=VALUE,
                               remaining_events=[NewEvent(APPENDS + 1, "value", VALUE)])

    return Sampler(append, before=before, after=after, check=check, units=APPENDS)


def _populate(store: Store, total: int) -> str:
    execution = store.create_execution("run", input="flood()")
    for start in range(1, total, POPULATE_BATCH):
        end = min(start + POPULATE_BATCH, total)
        store.append_events(execution.id, [NewEvent(s, "console", LINE) for s in range(start, end)])
    store.finish_execution(execution.id, "ok", result=VALUE,
                           remaining_events=[NewEvent(total, "value", VALUE)])
    return execution.id


def _page_rows(store: Store, total: int) -> Sampler[Any]:
    execution_id = _populate(store, total)
    rng = random.Random(7)

    def page(cursor: int) -> tuple[int, list[Any]]:
        return cursor, store.list_events(execution_id, after_seq=cursor, limit=100)

    def check(result: tuple[int, list[Any]]) -> None:
        cursor, events = result
        if len(events) != 100 or events[0].seq != cursor + 1 or events[-1].seq != cursor + 100:
            raise CheckFailed(f"the page after {cursor} has {len(events)} events "
                              f"({events[0].seq if events else '-'}..)")

    return Sampler(page, before=lambda: rng.randrange(0, total - 100), check=check)


def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
    directory.mkdir(parents=True, exist_ok=True)
    store = stack.enter_context(Store.open(directory / "bench.db"))
    full = stack.enter_context(Store.open(directory / "bench-full.db", synchronous="FULL"))
    total = 50_000 if quick else 1_000_000
    return Setup([
        Measured(VM, "store: finish_execution with 100 events (1 transaction), per execution",
                 _finish_rows(store)),
        Measured(VM, f"store: append_events one event per transaction, per event ({APPENDS} a "
                     "sample)", _append_rows(store)),
        Measured(VM, "store: the same with synchronous=FULL, per event", _append_rows(full)),
        Measured(VM, f"store: list_events, a page of 100 in an execution of {total:,} events",
                 _page_rows(store, total)),
    ], details=lambda _: {"events_in_long_execution": total})


def scenario() -> Scenario:
    return Scenario("store", "store", "the store alone: finish, append, page (SQLite, WAL)",
                    "operation", setup, Plan(quick_runs=20, full_runs=200, quick_warmup=2,
                                             full_warmup=10))
