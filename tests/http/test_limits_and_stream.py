"""Limits seen from a client, and the event stream (server-sent events) of a running execution."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_daemon import (
    TERMINAL_TYPES,
    Background,
    error_of,
    events_of,
    new_session,
    new_template,
    repl,
    sse_events,
    wait_for_running,
)

WALL_MS = 300
# How far past the limit the engine's own wall figure may go. The limit is checked every few
# ms, but a loaded host overshoots it by however long it was descheduled: a hang guard, the
# stop itself is judged by its kind and limit.
WALL_SLACK_MS = 2000
# The client's view: the stop, the row's finishing transaction and the HTTP round trip add
# milliseconds; under load anything. A hang guard only.
ANSWER_SLACK_MS = 5000

TICKS = 10
TICK_MS = 100
# ~1 s of work that logs a line every 100 ms, then a value: 1 + TICKS + 1 events.
CHATTY = (f"(function(){{ for (let i = 0; i < {TICKS}; i++) {{ const t0 = Date.now(); "
          f"while (Date.now() - t0 < {TICK_MS}) {{}} console.log('tick ' + i); }} }})(); 'done'")
N_EVENTS = TICKS + 2


def test_wall_limit_answers_within_the_limit(api: httpx.Client, worktree: Path) -> None:
    template = new_template(api, limits={"wall_ms": WALL_MS, "cpu_ms": 1000})
    session = new_session(api, template["id"], worktree)
    assert repl(api, session["id"], "globalThis.k = 7")["status"] == "ok"  # warm: connection, session
    for attempt in range(3):
        started = time.perf_counter()
        r = api.post("/executions/repl", json={"session_id": session["id"], "input": "while (true) {}"})
        elapsed_ms = (time.perf_counter() - started) * 1000
        assert r.status_code == 201, r.text
        execution = r.json()
        assert execution["status"] == "timeout", execution
        assert execution["error"]["kind"] == "timeout"
        assert execution["error"]["limit"]["name"] == "wall_ms"
        assert execution["error"]["limit"]["value"] == WALL_MS
        assert execution["error"]["limit"]["used"] >= WALL_MS
        # The engine's own clock: stopped at the limit (a lower bound from the limit itself) ...
        assert execution["metrics"]["wall_ms"] >= WALL_MS, execution["metrics"]
        # generous: ... and not let run on (WALL_SLACK_MS above)
        assert execution["metrics"]["wall_ms"] < WALL_MS + WALL_SLACK_MS, execution["metrics"]
        # generous: the answer did not wait for anything else (ANSWER_SLACK_MS above)
        assert elapsed_ms <= WALL_MS + ANSWER_SLACK_MS, f"attempt {attempt}: answered after {elapsed_ms:.1f} ms"
        events = events_of(api, execution["id"])
        assert [e["type"] for e in events] == ["input_echo", "limit"]
        assert events[-1]["payload"]["kind"] == "timeout"
        # the session answers the next REPL correctly, with its state
        after = repl(api, session["id"], "k + 1")
        assert after["status"] == "ok" and after["result"]["json"] == 8


def _read_all(client: httpx.Client, execution_id: str, last_event_id: str | None = None,
              stop_after: int | None = None) -> list[dict[str, Any]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    with client.stream("GET", f"/executions/{execution_id}/events/stream", headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return list(sse_events(r, stop_after=stop_after))


def _check_stream(got: list[dict[str, Any]], first_seq: int = 1) -> None:
    seqs = [e["data"]["seq"] for e in got]
    assert seqs == list(range(first_seq, first_seq + len(got))), seqs
    for event in got:
        assert int(event["id"]) == event["data"]["seq"]
        assert event["event"] == event["data"]["type"]


@pytest.fixture
def running(api: httpx.Client, worktree: Path) -> Any:
    """A chatty execution (~1 s) running in a background thread: (its row, the thread)."""
    template = new_template(api, limits={"cpu_ms": 20000, "wall_ms": 20000})
    session = new_session(api, template["id"], worktree)
    call = Background(lambda: api.post("/executions/repl", json={"session_id": session["id"], "input": CHATTY}))
    execution = wait_for_running(api, session["id"])
    yield execution, call
    call.result()


def test_stream_delivers_each_event_once_in_order(api: httpx.Client, running: Any) -> None:
    execution, call = running
    # A second reader, at the same time: reads 3 events, hangs up, resumes from Last-Event-ID.
    def resume() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        head = _read_all(api, execution["id"], stop_after=3)
        tail = _read_all(api, execution["id"], last_event_id=head[-1]["id"])
        return head, tail

    resumer = Background(resume)
    got = _read_all(api, execution["id"])
    stream_ended = time.monotonic()
    response = call.result()
    assert response.status_code == 201 and response.json()["status"] == "ok"

    _check_stream(got)
    assert len(got) == N_EVENTS
    assert got[0]["event"] == "input_echo"
    assert [e["data"]["payload"]["text"] for e in got[1:-1]] == [f"tick {i}" for i in range(TICKS)]
    assert got[-1]["event"] in TERMINAL_TYPES and got[-1]["data"]["payload"]["json"] == "done"
    # exactly what the store holds
    assert [e["data"] for e in got] == events_of(api, execution["id"])
    # Live, not replayed at the end. Causality, not a duration: the first tick reached this
    # client before the daemon finished the execution (its stored ended_at, the same host's
    # wall clock); a stream that replayed the store once the row was done could not.
    ended_at = datetime.fromisoformat(response.json()["ended_at"])
    assert got[1]["arrived_at"] < ended_at, "the stream did not deliver events while running"
    # And it ended once the terminal event was out (the stream's own poll is 50 ms), not at
    # some timeout.
    assert call.finished_at is not None
    # generous: far below the stream's 15 s heartbeat; only proves it did not run on after the end
    assert stream_ended - call.finished_at < 10

    head, tail = resumer.result()
    _check_stream(head)
    _check_stream(tail, first_seq=4)
    assert [e["data"] for e in head + tail] == [e["data"] for e in got]


def test_stream_resumes_from_last_event_id_while_running(api: httpx.Client, running: Any) -> None:
    execution, call = running
    tail = _read_all(api, execution["id"], last_event_id="5")
    _check_stream(tail, first_seq=6)
    assert tail[-1]["event"] == "value" and len(tail) == N_EVENTS - 5
    call.result()
    # after the end: a resumed stream has just the rest, and one past the end has nothing
    assert [int(e["id"]) for e in _read_all(api, execution["id"], last_event_id=str(N_EVENTS - 1))] == [N_EVENTS]
    assert _read_all(api, execution["id"], last_event_id=str(N_EVENTS)) == []


def test_stream_of_unknown_or_malformed_execution(api: httpx.Client) -> None:
    error_of(api.get("/executions/00000000-0000-0000-0000-000000000000/events/stream"), 404,
             "EXECUTION_NOT_FOUND")
    error_of(api.get("/executions/nope/events/stream"), 400, "VALIDATION_ERROR")
