"""`POST /executions/repl` with `Accept: text/event-stream`: the answer is the execution's
event stream from the moment it exists (what the web console's REPL follows), against the
shared daemon (sessions in worker processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from http_daemon import error_of, events_of, new_session, new_template, sse_events
from route_checks import NIL, SLOW_LIMITS

STREAM = {"accept": "text/event-stream"}
# The second line is printed ~300 ms of busy work after the first, then the value.
TWO_LINES = ("console.log('first'); const t0 = Date.now(); while (Date.now() - t0 < 300) {}; "
             "console.log('second'); 6 * 7")


def _streamed_repl(api: httpx.Client, session_id: str, code: str) -> tuple[httpx.Headers, list[dict[str, Any]]]:
    with api.stream("POST", "/executions/repl", json={"session_id": session_id, "input": code},
                    headers=STREAM) as r:
        assert r.status_code == 201, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return r.headers, list(sse_events(r))


def test_a_streamed_repl_sends_each_event_as_it_is_recorded(api: httpx.Client, worktree: Path) -> None:
    session = new_session(api, new_template(api, limits=SLOW_LIMITS)["id"], worktree)
    headers, got = _streamed_repl(api, session["id"], TWO_LINES)
    assert [e["event"] for e in got] == ["input_echo", "console", "console", "value"]
    assert [e["data"]["payload"].get("text") for e in got[1:3]] == ["first", "second"]
    # The first line reached the client while the script still ran: before the second line
    # was even recorded (the daemon's own timestamps, same host clock).
    assert got[1]["arrived_at"].isoformat() < got[2]["data"]["ts"].replace("Z", "+00:00")
    location = headers["location"]
    execution_id = location.rsplit("/", 1)[1]
    assert location == f"/api/v1/executions/{execution_id}"
    execution = api.get(f"/executions/{execution_id}").json()
    assert execution["status"] == "ok" and execution["kind"] == "repl"
    assert execution["result"]["json"] == 42 and execution["session_id"] == session["id"]
    assert [e["seq"] for e in events_of(api, execution_id)] == [e["data"]["seq"] for e in got]
    # The session kept its state: the streamed input ran in it like any REPL input.
    assert api.post("/executions/repl", json={"session_id": session["id"], "input": "typeof t0"}).json()[
        "result"]["json"] == "number"


def test_a_streamed_repl_refused_before_it_starts_is_the_error_envelope(api: httpx.Client) -> None:
    r = api.post("/executions/repl", json={"session_id": NIL, "input": "1"}, headers=STREAM)
    error_of(r, 404, "SESSION_NOT_FOUND")
    r = api.post("/executions/repl", json={"session_id": "not-a-uuid", "input": "1"}, headers=STREAM)
    error_of(r, 400, "VALIDATION_ERROR")


def test_a_streamed_repl_stopped_by_a_limit_ends_with_the_limit_event(api: httpx.Client, worktree: Path) -> None:
    session = new_session(api, new_template(api, limits={"wall_ms": 300, "cpu_ms": 5000})["id"], worktree)
    headers, got = _streamed_repl(api, session["id"], "console.log('spinning'); while (true) {}")
    assert [e["event"] for e in got] == ["input_echo", "console", "limit"]
    execution = api.get(headers["location"].removeprefix("/api/v1")).json()
    assert execution["status"] in ("timeout", "limit_exceeded"), execution
