"""The execution routes of docs/api.md (repl, run-file, the one-shot run, listings, events) and
their error codes, unknown and malformed ids on every route, against a real daemon over
loopback.

The `api` client checks the cross-cutting rules on every response it sees (X-Request-Id, the
error envelope and its code → status table, RFC 3339 times): see http_daemon.check_response.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_daemon import (
    Background,
    error_of,
    events_of,
    new_session,
    new_template,
    repl,
    sse_events,
    wait_for_running,
)
from route_checks import (
    BAD,
    NIL,
    busy,
    check_events,
    check_execution,
)

# ================================================================================================
# executions
# ================================================================================================


def test_repl_ok(api: httpx.Client, sess: dict[str, Any]) -> None:
    r = api.post("/executions/repl",
                 json={"session_id": sess["id"], "input": "console.log('a', 1, {b: 2}); 20 + 22"})
    assert r.status_code == 201
    execution = r.json()
    check_execution(execution)
    assert execution["kind"] == "repl" and execution["session_id"] == sess["id"]
    assert execution["input"] == "console.log('a', 1, {b: 2}); 20 + 22"
    assert execution["status"] == "ok" and execution["error"] is None
    assert execution["result"]["type"] == "number" and execution["result"]["json"] == 42
    assert execution["session_state"]["state"] == "kept"
    events = events_of(api, execution["id"])
    check_events(events, execution)
    assert [e["type"] for e in events] == ["input_echo", "console", "value"]
    assert events[0]["payload"] == {"text": execution["input"]}
    assert events[1]["payload"] == {"level": "log", "text": "a 1 { b: 2 }"}
    assert execution["metrics"]["events"] in (len(events), len(events) - 1, len(events) - 2)


@pytest.mark.parametrize(("code", "js_type"), [
    ("1.5", "number"), ("'s'", "string"), ("true", "boolean"), ("undefined", "undefined"),
    ("null", "null"), ("10n", "bigint"), ("Symbol('x')", "symbol"), ("(() => 1)", "function"),
    ("[1, 2]", "array"), ("({a: 1})", "object"),
])
def test_value_event_types(api: httpx.Client, sess: dict[str, Any], code: str, js_type: str) -> None:
    execution = repl(api, sess["id"], code)
    assert execution["status"] == "ok"
    value = events_of(api, execution["id"])[-1]
    assert value["type"] == "value"
    assert value["payload"]["type"] == js_type
    assert isinstance(value["payload"]["preview"], str)


def test_repl_that_throws_is_201(api: httpx.Client, sess: dict[str, Any]) -> None:
    execution = repl(api, sess["id"], "throw new RangeError('nope')")
    check_execution(execution)
    assert execution["status"] == "error" and execution["result"] is None
    assert execution["error"]["kind"] == "exception"
    assert execution["error"]["name"] == "RangeError" and execution["error"]["message"] == "nope"
    events = events_of(api, execution["id"])
    check_events(events, execution)
    assert events[-1]["payload"]["name"] == "RangeError"


@pytest.mark.parametrize(("code", "status", "kind"), [
    ("while (true) {}", {"timeout", "limit_exceeded"}, {"timeout", "cpu_limit"}),
    ("for (let i = 0; i < 100; i++) console.log(i)", {"limit_exceeded"}, {"event_limit"}),
    ("console.log('x'.repeat(5000))", {"limit_exceeded"}, {"output_limit"}),
    ("let a = []; while (true) a.push(new Array(100000).fill(1))", {"limit_exceeded"}, {"memory_limit"}),
])
def test_repl_that_hits_a_limit_is_201(api: httpx.Client, worktree: Path, code: str, status: set[str],
                                       kind: set[str]) -> None:
    template = new_template(api, limits={"cpu_ms": 200, "wall_ms": 1000, "mem_mb": 8, "max_events": 10,
                                         "max_output_kb": 1})
    session = new_session(api, template["id"], worktree)
    execution = repl(api, session["id"], code)
    check_execution(execution)
    assert execution["status"] in status, execution
    assert execution["error"]["kind"] in kind
    assert set(execution["error"]["limit"]) >= {"name", "value", "used"}
    events = events_of(api, execution["id"])
    check_events(events, execution)
    assert events[-1]["payload"]["kind"] == execution["error"]["kind"]
    # the session still answers
    assert repl(api, session["id"], "2 + 2")["result"]["json"] == 4


def test_state_carries_across_requests(api: httpx.Client, sess: dict[str, Any]) -> None:
    repl(api, sess["id"], "globalThis.counter = 41; var v = 'var'; function f() { return 'fn' }")
    execution = repl(api, sess["id"], "counter += 1; [counter, v, f()]")
    assert execution["result"]["json"] == [42, "var", "fn"]
    assert repl(api, sess["id"], "counter")["result"]["json"] == 42


def test_busy_session_is_409(api: httpx.Client, slow_tpl: dict[str, Any], worktree: Path) -> None:
    session = new_session(api, slow_tpl["id"], worktree)
    long = Background(lambda: api.post("/executions/repl",
                                       json={"session_id": session["id"], "input": busy(1500, "'long done'")}))
    wait_for_running(api, session["id"])
    error = error_of(api.post("/executions/repl", json={"session_id": session["id"], "input": "1"}), 409,
                     "SESSION_BUSY")
    assert error["message"]
    error_of(api.post("/executions/run-file", json={"session_id": session["id"], "path": "main.js"}), 409,
             "SESSION_BUSY")
    response = long.result()
    assert response.status_code == 201 and response.json()["result"]["json"] == "long done"
    assert repl(api, session["id"], "1")["status"] == "ok"


def test_run_file(api: httpx.Client, sess: dict[str, Any]) -> None:
    r = api.post("/executions/run-file", json={"session_id": sess["id"], "path": "main.js"})
    assert r.status_code == 201, r.text
    execution = r.json()
    check_execution(execution)
    assert execution["kind"] == "run_file" and execution["path"] == "main.js"
    assert execution["status"] == "ok" and execution["result"]["json"] == 42
    events = events_of(api, execution["id"])
    check_events(events, execution)
    assert events[0]["payload"]["text"] == "main.js"
    assert events[1]["payload"]["text"] == "running main"


def test_run_file_args_and_env_are_read_only_globals(api: httpx.Client, sess: dict[str, Any]) -> None:
    r = api.post("/executions/run-file", json={"session_id": sess["id"], "path": "args.js",
                                               "args": {"a": 1}, "env": {"E": "x"}})
    assert r.status_code == 201, r.text
    execution = r.json()
    assert execution["args"] == {"a": 1} and execution["env"] == {"E": "x"}
    assert json.loads(execution["result"]["json"]) == {"a": 1, "e": "x"}


def test_run_file_that_throws_is_201(api: httpx.Client, sess: dict[str, Any]) -> None:
    r = api.post("/executions/run-file", json={"session_id": sess["id"], "path": "throws.js"})
    assert r.status_code == 201 and r.json()["status"] == "error"
    assert r.json()["error"]["name"] == "TypeError"


def test_run_file_symlink_inside_is_fine(api: httpx.Client, sess: dict[str, Any]) -> None:
    r = api.post("/executions/run-file", json={"session_id": sess["id"], "path": "inside_link.js"})
    assert r.status_code == 201 and r.json()["result"]["json"] == 42


@pytest.mark.parametrize(("path", "status", "code"), [
    ("../etc/passwd", 422, "INVALID_PATH"),
    ("/etc/passwd", 422, "INVALID_PATH"),
    ("sub/../../etc/passwd", 422, "INVALID_PATH"),
    ("escape.js", 422, "INVALID_PATH"),          # a symlink leading out
    ("outdir/secret.js", 422, "INVALID_PATH"),   # a symlinked directory leading out
    ("missing.js", 404, "FILE_NOT_FOUND"),
    ("sub", 404, "FILE_NOT_FOUND"),              # a directory is not a file
])
def test_run_file_path_checked_before_any_row(api: httpx.Client, sess: dict[str, Any], path: str,
                                              status: int, code: str) -> None:
    before = [e["id"] for e in api.get("/executions", params={"session_id": sess["id"], "limit": 1000}).json()]
    r = api.post("/executions/run-file", json={"session_id": sess["id"], "path": path})
    error_of(r, status, code)
    after = [e["id"] for e in api.get("/executions", params={"session_id": sess["id"], "limit": 1000}).json()]
    assert after == before, "a refused run-file left an execution row"


def test_run_one_shot_code(api: httpx.Client) -> None:
    live_before = api.get("/runtime/summary").json()["active_session_ids"]
    r = api.post("/run", json={"code": "console.log('hi'); 1 + 1"})
    assert r.status_code == 201, r.text
    execution = r.json()
    check_execution(execution)
    assert execution["kind"] == "run" and execution["session_id"] is None
    assert execution["status"] == "ok" and execution["result"]["json"] == 2
    check_events(events_of(api, execution["id"]), execution)
    assert api.get(f"/executions/{execution['id']}").json()["id"] == execution["id"]
    assert api.get("/runtime/summary").json()["active_session_ids"] == live_before


def test_run_one_shot_path(api: httpx.Client) -> None:
    r = api.post("/run", json={"path": "oneshot.js"})
    assert r.status_code == 201, r.text
    execution = r.json()
    assert execution["kind"] == "run" and execution["path"] == "oneshot.js"
    assert execution["result"]["json"] == 42
    events = events_of(api, execution["id"])
    assert events[0]["payload"]["text"] == "oneshot.js"
    assert events[1]["payload"]["text"] == "one shot"
    error_of(api.post("/run", json={"path": "../oneshot.js"}), 422, "INVALID_PATH")
    error_of(api.post("/run", json={"path": "nothere.js"}), 404, "FILE_NOT_FOUND")


def test_run_one_shot_limits_and_template(api: httpx.Client) -> None:
    r = api.post("/run", json={"code": "while (true) {}", "limits": {"wall_ms": 200, "cpu_ms": 1000}})
    assert r.status_code == 201 and r.json()["status"] == "timeout", r.text
    r = api.post("/run", json={"code": "throw new Error('x')"})
    assert r.status_code == 201 and r.json()["status"] == "error"
    template = new_template(api)
    assert api.post(f"/templates/{template['id']}/libraries", json={"name": "greet@1.0.0"}).status_code == 201
    r = api.post("/run", json={"code": "greet('run')", "template_id": template["id"]})
    assert r.status_code == 201 and r.json()["result"]["json"] == "hello run", r.text
    error_of(api.post("/run", json={"code": "1", "template_id": NIL}), 404, "TEMPLATE_NOT_FOUND")
    error_of(api.post("/run", json={"code": "1", "limits": {"cpu_ms": 10**9}}), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("body", [{}, {"code": "1", "path": "oneshot.js"}, {"code": ""}])
def test_run_one_shot_needs_exactly_one_of_code_and_path(api: httpx.Client, body: dict[str, Any]) -> None:
    error_of(api.post("/run", json=body), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("limits", [{"bogus": 1}, {"cpu_ms": "5"}])
def test_run_one_shot_limits_strict_decoding(api: httpx.Client, limits: dict[str, Any]) -> None:
    """Unknown fields and wrong types in the body (here inside `limits`) → INVALID_REQUEST."""
    error_of(api.post("/run", json={"code": "1", "limits": limits}), 400, "INVALID_REQUEST")


def test_executions_list_newest_first_with_limit(api: httpx.Client, tpl: dict[str, Any],
                                                 worktree: Path) -> None:
    session = new_session(api, tpl["id"], worktree)
    r = api.get("/executions", params={"session_id": session["id"]})
    assert r.status_code == 200 and r.text.strip() == "[]"
    ids = [repl(api, session["id"], f"{i}")["id"] for i in range(55)]
    listed = api.get("/executions", params={"session_id": session["id"]}).json()
    assert [e["id"] for e in listed] == ids[::-1][:50], "default limit 50, newest first"
    for execution in listed:
        check_execution(execution)
    two = api.get("/executions", params={"session_id": session["id"], "limit": 2}).json()
    assert [e["id"] for e in two] == [ids[-1], ids[-2]]
    assert len(api.get("/executions", params={"session_id": session["id"], "limit": 1000}).json()) == 55
    for bad in ("0", "-1", "1001", "abc"):
        error_of(api.get("/executions", params={"session_id": session["id"], "limit": bad}), 400,
                 "VALIDATION_ERROR")
    error_of(api.get("/executions"), 400, "VALIDATION_ERROR")
    error_of(api.get("/executions", params={"session_id": NIL}), 404, "SESSION_NOT_FOUND")


def test_execution_get(api: httpx.Client, finished: dict[str, Any]) -> None:
    r = api.get(f"/executions/{finished['id']}")
    assert r.status_code == 200
    assert r.json() == finished


def test_events_pagination(api: httpx.Client, finished: dict[str, Any]) -> None:
    events = events_of(api, finished["id"])
    check_events(events, finished)
    assert len(events) == 7
    assert [e["payload"]["text"] for e in events[1:6]] == [f"line {i}" for i in range(5)]
    assert events_of(api, finished["id"], 0) == events
    assert events_of(api, finished["id"], 3) == events[3:]
    assert [e["seq"] for e in events_of(api, finished["id"], 6)] == [7]
    empty = api.get(f"/executions/{finished['id']}/events", params={"after_seq": 7})
    assert empty.status_code == 200 and empty.text.strip() == "[]"
    assert events_of(api, finished["id"], 1000) == []
    for bad in ("-1", "abc"):
        error_of(api.get(f"/executions/{finished['id']}/events", params={"after_seq": bad}), 400,
                 "VALIDATION_ERROR")


def test_event_stream_of_finished_execution(api: httpx.Client, finished: dict[str, Any]) -> None:
    with api.stream("GET", f"/executions/{finished['id']}/events/stream") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        got = list(sse_events(r))
    assert [int(e["id"]) for e in got] == list(range(1, 8))
    assert [e["data"] for e in got] == events_of(api, finished["id"])
    with api.stream("GET", f"/executions/{finished['id']}/events/stream",
                    headers={"Last-Event-ID": "5"}) as r:
        assert [int(e["id"]) for e in sse_events(r)] == [6, 7]


# ----- unknown and malformed ids ------------------------------------------------------------------


@pytest.mark.parametrize(("method", "route", "body", "code"), [
    ("GET", f"/sessions/{NIL}", None, "SESSION_NOT_FOUND"),
    ("POST", f"/sessions/{NIL}/close", None, "SESSION_NOT_FOUND"),
    ("DELETE", f"/sessions/{NIL}", None, "SESSION_NOT_FOUND"),
    ("POST", "/executions/repl", {"session_id": NIL, "input": "1"}, "SESSION_NOT_FOUND"),
    ("POST", "/executions/run-file", {"session_id": NIL, "path": "main.js"}, "SESSION_NOT_FOUND"),
    ("GET", f"/executions?session_id={NIL}", None, "SESSION_NOT_FOUND"),
    ("GET", f"/executions/{NIL}", None, "EXECUTION_NOT_FOUND"),
    ("GET", f"/executions/{NIL}/events", None, "EXECUTION_NOT_FOUND"),
    ("GET", f"/executions/{NIL}/events/stream", None, "EXECUTION_NOT_FOUND"),
    ("POST", "/sessions", {"template_id": NIL, "workspace_id": "w", "base_commit_oid": "c",
                           "worktree_path": "/"}, "TEMPLATE_NOT_FOUND"),
    ("POST", "/run", {"code": "1", "template_id": NIL}, "TEMPLATE_NOT_FOUND"),
], ids=lambda v: str(v)[:60])
def test_unknown_ids_are_404(api: httpx.Client, method: str, route: str, body: Any, code: str) -> None:
    error_of(api.request(method, route, json=body), 404, code)


MALFORMED_ID_ROUTES = [
    ("GET", "/templates/{bad}", None, "template_id"),
    ("DELETE", "/templates/{bad}", None, "template_id"),
    ("GET", "/templates/{bad}/settings", None, "template_id"),
    ("PATCH", "/templates/{bad}/settings", {"limits": {"wall_ms": 100}}, "template_id"),
    ("GET", "/templates/{bad}/capabilities", None, "template_id"),
    ("POST", "/templates/{bad}/capabilities", {"kind": "net", "name": "x"}, "template_id"),
    ("DELETE", f"/templates/{{bad}}/capabilities/{NIL}", None, "template_id"),
    ("DELETE", "/templates/{tpl}/capabilities/{bad}", None, "capability_id"),
    ("GET", "/templates/{bad}/startup-files", None, "template_id"),
    ("POST", "/templates/{bad}/startup-files", {"path": "main.js"}, "template_id"),
    ("DELETE", f"/templates/{{bad}}/startup-files/{NIL}", None, "template_id"),
    ("DELETE", "/templates/{tpl}/startup-files/{bad}", None, "startup_file_id"),
    ("GET", "/templates/{bad}/modules", None, "template_id"),
    ("POST", "/templates/{bad}/modules", {"name": "crypto"}, "template_id"),
    ("DELETE", "/templates/{bad}/modules/crypto", None, "template_id"),
    ("GET", "/templates/{bad}/libraries", None, "template_id"),
    ("POST", "/templates/{bad}/libraries", {"name": "greet@1.0.0"}, "template_id"),
    ("DELETE", "/templates/{bad}/libraries/greet@1.0.0", None, "template_id"),
    ("GET", "/sessions/{bad}", None, "session_id"),
    ("POST", "/sessions/{bad}/close", None, "session_id"),
    ("DELETE", "/sessions/{bad}", None, "session_id"),
    ("GET", "/executions?session_id={bad}", None, "session_id"),
    ("GET", "/executions/{bad}", None, "execution_id"),
    ("GET", "/executions/{bad}/events", None, "execution_id"),
    ("GET", "/executions/{bad}/events/stream", None, "execution_id"),
    ("POST", "/sessions", {"template_id": "{bad}", "workspace_id": "w", "base_commit_oid": "c",
                           "worktree_path": "/"}, "template_id"),
    ("POST", "/executions/repl", {"session_id": "{bad}", "input": "1"}, "session_id"),
    ("POST", "/executions/run-file", {"session_id": "{bad}", "path": "main.js"}, "session_id"),
    ("POST", "/run", {"code": "1", "template_id": "{bad}"}, "template_id"),
]


@pytest.mark.parametrize(("method", "route", "body", "field"), MALFORMED_ID_ROUTES, ids=lambda v: str(v)[:50])
@pytest.mark.parametrize("bad", [BAD, "1234", NIL[:-1]])
def test_malformed_ids_are_validation_errors(api: httpx.Client, tpl: dict[str, Any], method: str,
                                             route: str, body: Any, field: str, bad: str) -> None:
    route = route.replace("{bad}", bad).replace("{tpl}", tpl["id"])
    if body is not None:
        body = json.loads(json.dumps(body).replace("{bad}", bad))
    error = error_of(api.request(method, route, json=body), 400, "VALIDATION_ERROR")
    assert error["message"] == f"{field} must be a valid UUID"
