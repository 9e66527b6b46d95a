"""The rules every route follows, against a real daemon over loopback: the envelope for unknown
routes and methods, request ids (and in the log lines), request bodies (strict, JSON whatever
their label, the size limit), RFC 3339 times, the bearer token.

The `api` client checks the cross-cutting rules on every response it sees (X-Request-Id, the
error envelope and its code → status table, RFC 3339 times): see http_daemon.check_response.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_daemon import (
    Daemon,
    check_envelope,
    checked_client,
    error_of,
    events_of,
    session_body,
    start_daemon,
    unique,
)
from route_checks import (
    NIL,
    wait_for_log,
)

# ================================================================================================
# cross-cutting rules
# ================================================================================================


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/v1/nope", 404),
    ("POST", "/api/v1/nope", 404),
    ("GET", "/api/v1/templates/x/y/z/w", 404),
    ("GET", "/api", 404),  # `/` and every path outside /api/ is the web console (tests/web)
    ("GET", "/api/", 404),
    ("GET", "/api/v2/health", 404),
    ("DELETE", "/api/v1/health", 405),
    ("PUT", "/api/v1/templates", 405),
    ("PATCH", "/api/v1/sessions", 405),
    ("POST", f"/api/v1/executions/{NIL}", 405),
    ("GET", "/api/v1/run", 405),
])
def test_unknown_routes_and_wrong_methods_use_the_envelope(daemon: Daemon, method: str, path: str,
                                                           status: int) -> None:
    with checked_client(daemon.url) as client:
        r = client.request(method, path)
    assert r.status_code == status
    check_envelope(r)
    assert r.json()["error"]["code"] == ("ROUTE_NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED")


def test_request_id_on_every_response_and_reused(api: httpx.Client, daemon: Daemon) -> None:
    for method, path in (("GET", "/health"), ("GET", f"/templates/{NIL}"), ("GET", "/nope"),
                         ("DELETE", "/health"), ("POST", "/templates")):
        rid = f"rid-{uuid.uuid4().hex}"
        r = api.request(method, path, headers={"X-Request-Id": rid})
        assert r.headers["x-request-id"] == rid, (method, path)
    a = api.get("/health").headers["x-request-id"]
    b = api.get("/health").headers["x-request-id"]
    assert a and b and a != b, "each request gets its own id"


@pytest.mark.parametrize("incoming", ["has spaces in it", "x" * 300, "semi;colon", ""])
def test_invalid_incoming_request_id_is_replaced(api: httpx.Client, incoming: str) -> None:
    r = api.get("/health", headers={"X-Request-Id": incoming})
    assert r.headers["x-request-id"] and r.headers["x-request-id"] != incoming


def test_request_id_in_the_log_lines_of_the_request(api: httpx.Client, daemon: Daemon, tpl: dict[str, Any],
                                                    worktree: Path) -> None:
    rid = f"log-{uuid.uuid4().hex}"
    r = api.post("/sessions", json=session_body(tpl["id"], worktree), headers={"X-Request-Id": rid})
    assert r.status_code == 201 and r.headers["x-request-id"] == rid
    session_id = r.json()["id"]

    def access_line(line: dict[str, Any]) -> bool:
        return line.get("event") == "request" and line.get("request_id") == rid

    access = wait_for_log(daemon, access_line)
    assert len(access) == 1, access
    assert access[0]["path"] == "/api/v1/sessions" and access[0]["status"] == 201
    # every line the core wrote about spawning this session belongs to the request
    spawn = [line for line in daemon.log_lines() if line.get("session_id") == session_id]
    assert spawn, "the spawn logged nothing"
    assert all(line.get("request_id") == rid for line in spawn), spawn

    rid2 = f"log-{uuid.uuid4().hex}"
    api.get(f"/templates/{NIL}", headers={"X-Request-Id": rid2})
    lines = wait_for_log(daemon, lambda line: line.get("request_id") == rid2)
    assert lines and lines[0]["status"] == 404


# ----- request bodies -----------------------------------------------------------------------------

# (route, a valid body, the same body with a required field missing or None, one with a wrong type)
BODY_ROUTES: list[tuple[str, str, dict[str, Any], dict[str, Any] | None, dict[str, Any]]] = [
    ("POST", "/templates", {"name": "{unique}"}, {}, {"name": 5}),
    ("PATCH", "/templates/{tpl}/settings", {"limits": {"wall_ms": 5000}}, None, {"runtime": []}),
    ("POST", "/templates/{tpl}/capabilities", {"kind": "fs", "name": "{unique}", "enabled": False},
     {"kind": "fs", "enabled": False}, {"kind": "fs", "name": "x", "enabled": "yes"}),
    ("POST", "/templates/{tpl}/startup-files", {"path": "main.js"}, {"order_index": 1},
     {"path": "main.js", "order_index": "1"}),
    ("POST", "/templates/{tpl}/modules", {"name": "exec"}, {}, {"name": ["exec"]}),
    ("POST", "/templates/{tpl}/libraries", {"name": "greet@1.0.0"}, {}, {"name": 1}),
    ("POST", "/sessions", {"template_id": "{tpl}", "workspace_id": "w", "base_commit_oid": "c",
                           "worktree_path": "{wt}"},
     {"template_id": "{tpl}", "workspace_id": "w", "base_commit_oid": "c"},
     {"template_id": "{tpl}", "workspace_id": 1, "base_commit_oid": "c", "worktree_path": "{wt}"}),
    ("POST", "/executions/repl", {"session_id": "{sess}", "input": "1"}, {"session_id": "{sess}"},
     {"session_id": "{sess}", "input": 1}),
    ("POST", "/executions/run-file", {"session_id": "{sess}", "path": "main.js"}, {"session_id": "{sess}"},
     {"session_id": "{sess}", "path": "main.js", "args": [1]}),
    ("POST", "/run", {"code": "1"}, None, {"code": 1}),
]


def _fill(value: Any, ctx: dict[str, str]) -> Any:
    text = json.dumps(value)
    for key, replacement in ctx.items():
        text = text.replace("{" + key + "}", replacement)
    return json.loads(text)


@pytest.fixture
def ctx(tpl: dict[str, Any], sess: dict[str, Any], worktree: Path) -> dict[str, str]:
    return {"tpl": tpl["id"], "sess": sess["id"], "wt": str(worktree), "unique": unique()}


BODY_PROBLEMS = ["unknown_field", "malformed", "empty", "wrong_type", "not_object", "missing_field", "valid"]
BODY_CASES = [pytest.param(*route, problem, id=f"{route[0]} {route[1]} {problem}")
              for route in BODY_ROUTES for problem in BODY_PROBLEMS
              if not (problem == "missing_field" and route[3] is None)]


@pytest.mark.parametrize(("method", "route", "valid", "missing", "wrong", "problem"), BODY_CASES)
def test_request_bodies(api: httpx.Client, ctx: dict[str, str], method: str, route: str, valid: Any,
                        missing: Any, wrong: Any, problem: str) -> None:
    url = _fill(route, ctx)
    headers = {"content-type": "application/json"}
    if problem == "valid":
        r = api.request(method, url, json=_fill(valid, ctx))
        assert r.status_code in (200, 201), r.text
        return
    if problem == "missing_field":
        error_of(api.request(method, url, json=_fill(missing, ctx)), 400, "VALIDATION_ERROR")
        return
    content = {
        "unknown_field": json.dumps({**_fill(valid, ctx), "surprise": 1}).encode(),
        "malformed": b'{"name": ',
        "empty": b"",
        "wrong_type": json.dumps(_fill(wrong, ctx)).encode(),
        "not_object": b"[1, 2]",
    }[problem]
    error_of(api.request(method, url, content=content, headers=headers), 400, "INVALID_REQUEST")


def test_body_without_json_content_type_is_still_json(api: httpx.Client) -> None:
    r = api.post("/templates", content=json.dumps({"name": unique()}).encode(),
                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201, r.text


def test_body_over_the_default_limit_is_413(api: httpx.Client) -> None:
    limit = 1024 * 1024
    body = json.dumps({"name": "x" * limit}).encode()
    error_of(api.post("/templates", content=body, headers={"content-type": "application/json"}), 413,
             "PAYLOAD_TOO_LARGE")
    # exactly at the limit: not refused for its size (the name is too long: a validation error)
    at_limit = json.dumps({"name": "x" * (limit - 12)}).encode()
    assert len(at_limit) == limit
    error_of(api.post("/templates", content=at_limit, headers={"content-type": "application/json"}), 400,
             "VALIDATION_ERROR")


def test_chunked_body_over_the_default_limit_is_413(api: httpx.Client) -> None:
    """Without a Content-Length (chunked transfer), the limit still holds."""
    def chunks() -> Any:
        yield b'{"name": "'
        for _ in range(1100):
            yield b"x" * 1024
        yield b'"}'

    r = api.post("/templates", content=chunks(), headers={"content-type": "application/json"})
    error_of(r, 413, "PAYLOAD_TOO_LARGE")


def test_times_are_rfc3339_utc_microseconds(api: httpx.Client, finished: dict[str, Any],
                                            tpl: dict[str, Any], sess: dict[str, Any]) -> None:
    # The `api` client checks every *_at and ts field of every JSON response; this test reads a
    # sample of each kind explicitly, so it fails on its own too.
    from http_daemon import TIME_RE
    samples = [api.get(f"/templates/{tpl['id']}").json()["template"]["created_at"],
               api.get(f"/sessions/{sess['id']}").json()["created_at"],
               api.get(f"/executions/{finished['id']}").json()["started_at"],
               api.get(f"/executions/{finished['id']}").json()["ended_at"],
               events_of(api, finished["id"])[0]["ts"]]
    for value in samples:
        assert TIME_RE.match(value), value


# ----- the token ----------------------------------------------------------------------------------

TOKEN = "s3cret-token"

TOKEN_ROUTES = [
    ("GET", "/api/v1/runtime/summary"), ("GET", "/api/v1/templates"), ("POST", "/api/v1/templates"),
    ("GET", f"/api/v1/templates/{NIL}"), ("DELETE", f"/api/v1/templates/{NIL}"),
    ("GET", f"/api/v1/templates/{NIL}/settings"), ("PATCH", f"/api/v1/templates/{NIL}/settings"),
    ("GET", f"/api/v1/templates/{NIL}/capabilities"), ("POST", f"/api/v1/templates/{NIL}/capabilities"),
    ("DELETE", f"/api/v1/templates/{NIL}/capabilities/{NIL}"),
    ("GET", f"/api/v1/templates/{NIL}/startup-files"), ("POST", f"/api/v1/templates/{NIL}/startup-files"),
    ("DELETE", f"/api/v1/templates/{NIL}/startup-files/{NIL}"),
    ("GET", f"/api/v1/templates/{NIL}/modules"), ("POST", f"/api/v1/templates/{NIL}/modules"),
    ("DELETE", f"/api/v1/templates/{NIL}/modules/fs"),
    ("GET", f"/api/v1/templates/{NIL}/libraries"), ("POST", f"/api/v1/templates/{NIL}/libraries"),
    ("DELETE", f"/api/v1/templates/{NIL}/libraries/x@1"),
    ("GET", "/api/v1/sessions"), ("POST", "/api/v1/sessions"), ("GET", f"/api/v1/sessions/{NIL}"),
    ("POST", f"/api/v1/sessions/{NIL}/close"), ("DELETE", f"/api/v1/sessions/{NIL}"),
    ("POST", "/api/v1/executions/repl"), ("POST", "/api/v1/executions/run-file"), ("POST", "/api/v1/run"),
    ("GET", f"/api/v1/executions?session_id={NIL}"), ("GET", f"/api/v1/executions/{NIL}"),
    ("GET", f"/api/v1/executions/{NIL}/events"), ("GET", f"/api/v1/executions/{NIL}/events/stream"),
    ("GET", "/api/v1/openapi.json"), ("GET", "/api/v1/nope"), ("DELETE", "/api/v1/templates"),
]


@pytest.fixture(scope="module")
def strict_daemon(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A second daemon with a bearer token and a 1 KiB body limit."""
    proc = start_daemon(tmp_path_factory.mktemp("strict"), "--token", TOKEN, "--max-body-kb", "1")
    yield proc
    rc = proc.stop()
    assert rc == 0, f"the token daemon (fixture `strict_daemon`) exited {rc} after SIGTERM"


@pytest.fixture(scope="module")
def strict(strict_daemon: Daemon) -> Any:
    with checked_client(strict_daemon.url) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), TOKEN_ROUTES, ids=lambda v: str(v))
def test_token_required_on_every_route(strict: httpx.Client, method: str, path: str) -> None:
    body = b'{"name": "x"}' if method in ("POST", "PATCH") else None
    headers = {"content-type": "application/json"}
    for auth in (None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN):
        h = dict(headers)
        if auth is not None:
            h["Authorization"] = auth
        r = strict.request(method, path, content=body, headers=h)
        error = error_of(r, 401, "UNAUTHORIZED")
        assert TOKEN not in json.dumps(error)


def test_token_health_is_open_and_token_works(strict: httpx.Client) -> None:
    r = strict.get("/api/v1/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert strict.get("/api/v1/templates", headers=auth).status_code == 200
    r = strict.post("/api/v1/templates", json={"name": unique()}, headers=auth)
    assert r.status_code == 201
    error_of(strict.get(f"/api/v1/templates/{NIL}", headers=auth), 404, "TEMPLATE_NOT_FOUND")


def test_small_body_limit(strict: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    small = json.dumps({"name": unique()}).encode()
    assert strict.post("/api/v1/templates", content=small, headers=auth).status_code == 201
    big = json.dumps({"name": "x" * 2000}).encode()
    error_of(strict.post("/api/v1/templates", content=big, headers=auth), 413, "PAYLOAD_TOO_LARGE")
    error_of(strict.post("/api/v1/run", content=json.dumps({"code": "1;" * 1000}).encode(), headers=auth), 413,
             "PAYLOAD_TOO_LARGE")


def test_small_body_limit_chunked(strict: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}

    def chunks() -> Any:
        yield b'{"name": "'
        yield b"x" * 2048
        yield b'"}'

    error_of(strict.post("/api/v1/templates", content=chunks(), headers=auth), 413, "PAYLOAD_TOO_LARGE")
