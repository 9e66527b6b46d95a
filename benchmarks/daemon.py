"""The daemon under test and its client: `vm-system serve` as a real process on a free port of
127.0.0.1 with a database in a temporary directory, and `http.client` keep-alive connections to
it. Set-up calls raise ApiError; the checks of what the daemon answered raise CheckFailed."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from benchmarks.checks import same_value
from benchmarks.supervised import BASE_COMMIT, BUSY_PAUSE_S, WORKSPACE, BusyCounter
from benchmarks.timing import REPO_ROOT, CheckFailed, percentile
from supervisor import read_json_log

API = "/api/v1"
REPL_PATH = f"{API}/executions/repl"
HEALTH_PATH = f"{API}/health"
# Request ids the daemon's access log repeats: they pick the benchmark's requests out of it.
REPL_REQUEST_ID = "http-bench-repl"
HEALTH_REQUEST_ID = "http-bench-health"
JSON_HEADERS = {"Content-Type": "application/json"}

# uvicorn closes keep-alive connections idle for 5 s: one idle longer than this is reopened
# before a request rather than found closed in the middle of one.
IDLE_REOPEN_S = 2.0
# In the throughput scenario, every CHECK_EVERY-th response of each thread (the first included)
# is decoded and checked in the loop; all of them are checked in the store after the window.
CHECK_EVERY = 16
# The API lists at most this many executions of a session at once (MAX_EXECUTIONS_PAGE): a
# window ends early when one thread reaches it, so that the store check sees every execution.
MAX_PER_SESSION = 1000
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
PROCESS_TIMEOUT_S = 120.0


class ApiError(RuntimeError):
    """A set-up call to the daemon (outside any timing) answered something unexpected."""




# ----- the client: one keep-alive connection ----------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def error_code(self) -> str | None:
        try:
            return self.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"{self.status} {self.body[:300].decode('utf-8', 'replace')}"


class Connection:
    """One HTTP/1.1 keep-alive connection (http.client, TCP_NODELAY on the client side too).

    `opened` counts the TCP connections made: 1 for a connection kept alive throughout.
    """

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"not an http://HOST:PORT address: {url!r}")
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self._conn: http.client.HTTPConnection | None = None
        self._last_use = 0.0
        self.opened = 0

    def _open(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.connect()
        # http.client sends a bytes body with its headers in one write; with Nagle off a small
        # request never waits for the previous segment's ACK either.
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.opened += 1
        return conn

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Reply:
        conn = self._conn
        if conn is None or time.monotonic() - self._last_use > IDLE_REOPEN_S:
            self.close()
            conn = self._conn = self._open()
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        data = response.read()
        if response.will_close:  # the server said Connection: close
            self.close()
        self._last_use = time.monotonic()
        return Reply(response.status, data)

    def call(self, method: str, path: str, payload: Any = None) -> Reply:
        body = None if payload is None else json.dumps(payload).encode()
        return self.request(method, path, body, JSON_HEADERS if body is not None else None)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _expect(reply: Reply, status: int, what: str) -> Any:
    if reply.status != status:
        raise ApiError(f"{what}: expected {status}, got {reply.describe()}")
    return reply.json()


def create_template(conn: Connection, name: str) -> str:
    return _expect(conn.call("POST", f"{API}/templates", {"name": name}), 201,
                   "POST /templates")["id"]


def create_session(conn: Connection, template_id: str, worktree: Path) -> str:
    session = _expect(conn.call("POST", f"{API}/sessions", {
        "template_id": template_id, "workspace_id": WORKSPACE, "base_commit_oid": BASE_COMMIT,
        "worktree_path": str(worktree)}), 201, "POST /sessions")
    if session.get("status") != "ready":
        raise ApiError(f"session {session.get('id')} is {session.get('status')}: "
                       f"{session.get('last_error')}")
    return session["id"]


def close_session(conn: Connection, session_id: str) -> None:
    _expect(conn.call("POST", f"{API}/sessions/{session_id}/close"), 200, "close session")


def list_executions(conn: Connection, session_id: str,
                    limit: int = MAX_PER_SESSION) -> list[dict[str, Any]]:
    query = urlencode({"session_id": session_id, "limit": limit})
    return _expect(conn.call("GET", f"{API}/executions?{query}"), 200, "GET /executions")


def worktree(directory: Path) -> Path:
    path = directory / "worktree"
    path.mkdir(parents=True, exist_ok=True)
    return path




def post_repl(conn: Connection, body: bytes, headers: Mapping[str, str],
              busy: BusyCounter) -> Reply:
    """POST /executions/repl, retried while the session answers 409 SESSION_BUSY."""
    refusals = 0
    try:
        while True:
            reply = conn.request("POST", REPL_PATH, body, headers)
            if reply.status == 409 and reply.error_code() == "SESSION_BUSY":
                refusals += 1
                time.sleep(BUSY_PAUSE_S)
                continue
            return reply
    finally:
        busy.add(refusals)


def repl_body(session_id: str, code: str) -> bytes:
    return json.dumps({"session_id": session_id, "input": code}).encode()


def execution_problems(execution: Any, session_id: str, code: str, expected: Any) -> list[str]:
    """What is wrong with an execution (as the API returns it) of `code` in `session_id`."""
    if not isinstance(execution, dict):
        return [f"not an execution object: {execution!r:.200}"]
    where = f"execution {execution.get('id')}"
    problems = []
    if execution.get("session_id") != session_id:
        problems.append(f"{where}: session {execution.get('session_id')}, expected {session_id}")
    if execution.get("kind") != "repl" or execution.get("input") != code:
        problems.append(f"{where}: {execution.get('kind')} of {execution.get('input')!r}, "
                        f"expected a repl of {code!r}")
    if execution.get("status") != "ok":
        problems.append(f"{where}: ended {execution.get('status')}: {execution.get('error')}")
    value = (execution.get("result") or {}).get("json")
    if not same_value(value, expected):
        problems.append(f"{where}: value {value!r}, expected {expected!r}")
    return problems


def repl_expects(session_id: str, code: str, expected: Any) -> Callable[[Any], None]:
    """A check of one reply to POST /executions/repl: 201 and a finished ok execution."""

    def check(reply: Any) -> None:
        if not isinstance(reply, Reply):
            raise CheckFailed(f"expected a Reply, got {type(reply).__name__}")
        if reply.status != 201:
            raise CheckFailed(f"expected 201, got {reply.describe()}")
        try:
            execution = reply.json()
        except ValueError as exc:
            raise CheckFailed(f"the 201 body is not JSON: {reply.body[:200]!r}") from exc
        problems = execution_problems(execution, session_id, code, expected)
        if problems:
            raise CheckFailed("; ".join(problems))

    return check


def store_problems(listed: Sequence[Any], answered: int, session_id: str, code: str,
                   expected: Any) -> list[str]:
    """Everything wrong between what the API lists for a session and the `answered` 201s its
    client received for `code`."""
    problems = []
    if len(listed) != answered:
        problems.append(f"session {session_id}: {len(listed)} executions stored, "
                        f"{answered} answered 201")
    for execution in listed:
        problems += execution_problems(execution, session_id, code, expected)
    return problems


# ----- the daemon under test --------------------------------------------------------------------

_LISTENING = re.compile(r"vm-system listening on (http://127\.0\.0\.1:\d+)")


class Daemon:
    """`vm-system serve` as a real process on 127.0.0.1:0 with a database in `directory`.

    Its JSON log (stderr) goes to a file: the access log's `duration_ms` is read from there.
    """

    def __init__(self, directory: Path, *extra: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.db = directory / "vm-system.db"
        self.log_path = directory / "daemon.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.pop("VM_SYSTEM_TOKEN", None)
        self.command = [sys.executable, "-m", "supervisor.adapters.cli", "serve", "--db",
                        str(self.db), "--listen", "127.0.0.1:0", "--log-format", "json", *extra]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command, cwd=directory, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=log, env=env)
        self.pid = self.proc.pid
        self.exit_code: int | None = None
        self.stop_problem: str | None = None
        try:
            self.url = self._address()
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise
        # Nothing else is written to stdout; drained anyway, so a stray line cannot block it.
        self._drain = threading.Thread(target=self.proc.stdout.read, daemon=True)  # type: ignore[union-attr]
        self._drain.start()

    def _address(self) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        line = self.proc.stdout.readline().decode("utf-8", "replace").strip() if ready else ""
        match = _LISTENING.fullmatch(line)
        if match is None:
            raise RuntimeError(f"the daemon did not announce its address (first stdout line "
                               f"{line!r}); log:\n{self.log_tail()}")
        return match.group(1)

    def cpu_seconds(self) -> float:
        """User + system CPU time the daemon process has used so far."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_records(self) -> list[dict[str, Any]]:
        return read_json_log(self.log_path)

    def access_durations_s(self, path: str, request_id: str) -> list[float]:
        """The daemon's own duration of each request to `path` sent with `request_id`: from its
        middleware's first line to the response's last byte handed to the server."""
        return [r["duration_ms"] / 1e3 for r in self.log_records()
                if r.get("event") == "request" and r.get("path") == path
                and r.get("request_id") == request_id and "duration_ms" in r]

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then wait: a graceful shutdown exits 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.exit_code = self.proc.wait()
            self.stop_problem = f"the daemon was still running {STOP_TIMEOUT_S:g} s after SIGTERM"
        self._drain.join(5)

    def shutdown_problems(self) -> list[str]:
        """After stop(): what went wrong in the daemon's life (exit status, logged errors)."""
        problems = [self.stop_problem] if self.stop_problem else []
        if self.exit_code != 0:
            problems.append(f"the daemon exited {self.exit_code} after SIGTERM, expected 0")
        errors = [r for r in self.log_records() if r.get("level") in ("error", "critical")]
        if errors:
            problems.append(f"the daemon logged {len(errors)} errors, the first: "
                            f"{json.dumps(errors[0])[:300]}")
        return problems


def start_daemon(stack: ExitStack, directory: Path) -> Daemon:
    daemon = Daemon(directory)
    stack.callback(daemon.stop)
    return daemon


def spread(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {"n": len(ordered), "median_s": statistics.median(ordered),
            "p10_s": percentile(ordered, 0.10), "p90_s": percentile(ordered, 0.90),
            "p99_s": percentile(ordered, 0.99)}
