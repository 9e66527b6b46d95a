"""Cost of vm-system seen from outside: the REST API of a real daemon over loopback, and the
command line as whole processes.

    python -m benchmarks.http_bench [--quick] [--json FILE] [--only SCENARIO ...] [--dir DIR]
    python -m benchmarks.http_bench --profile     # py-spy on the daemon under the throughput load

Scenarios (each a median with p10/p90, after untimed but checked warm-up calls):
* repl-latency: `POST /api/v1/executions/repl {"input": "1+1"}` on one keep-alive connection,
  request to response (the daemon answers once the execution is persisted). Every response is
  checked outside the timed part: 201, status ok, result json 2. Reference: `GET /api/v1/health`
  on the same connection (the HTTP stack alone). The daemon's own `duration_ms` of the same
  requests (its access log) is reported under the table.
* repl-throughput: 8 client threads for a fixed window, each with its own session (so that no
  SESSION_BUSY is expected) and its own keep-alive connection, running `1+1` back to back;
  executions per second. After every window the API must list, for every session, exactly as
  many executions as its thread got 201s, each ok with value 2. The client runs on the same
  cores as the daemon: the CPU both used is reported.
* cli-help, cli-run: `vm-system --help` and `vm-system run -e "1+1"` as new processes, through
  `python -m supervisor.adapters.cli` and through the installed console script (as found on
  PATH, and the script itself when PATH holds a pyenv shim); reference `python -c pass`.

Each HTTP scenario starts its own daemon (`python -m supervisor.adapters.cli serve --db <tmp>
--listen 127.0.0.1:0 --log-format json`, default settings otherwise) on a temporary database and
stops it with SIGTERM afterwards: it must exit 0 without logging an error. Targets are reported,
never asserted: tests/benchmarks/ checks the harness only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from benchmarks.timing import (
    Plan,
    choose,
    progress,
    publish,
    write,
    REPO_ROOT,
    BenchReport,
    CheckFailed,
    CountedSampler,
    SampleError,
    Sampler,
    Stats,
    code_identity,
    format_seconds,
    interleave,
    machine_info,
    package_versions,
    percentile,
    render_table,
)

MEASURED_PACKAGES = ("sandbox", "store", "supervisor")
# The HTTP stack as installed: uvicorn picks httptools and uvloop when present, h11 otherwise.
VERSIONED = ("wasmtime", "uvicorn", "fastapi", "starlette", "h11", "httptools", "uvloop", "anyio",
             "structlog")

API = "/api/v1"
REPL_PATH = f"{API}/executions/repl"
HEALTH_PATH = f"{API}/health"
TRIVIAL = "1+1"
WORKSPACE = "bench-workspace"
BASE_COMMIT = "0" * 40
THREADS = 8

LATENCY_TARGET_S = 3e-3
THROUGHPUT_TARGET_PER_S = 500
PROCESS_TARGET_S = 0.300

# Request ids the daemon's access log repeats: they pick the benchmark's requests out of it.
REPL_REQUEST_ID = "http-bench-repl"
HEALTH_REQUEST_ID = "http-bench-health"
JSON_HEADERS = {"Content-Type": "application/json"}

# A repl refused with SESSION_BUSY is retried after this pause, counted, and its wait is in the
# figures. Only the daemon itself (its background image writer) can cause one here.
BUSY_PAUSE_S = 0.0005
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


def _same_json(got: Any, expected: Any) -> bool:
    # True == 1 in Python: a boolean must not pass for a number, nor the reverse.
    return type(got) is type(expected) and got == expected


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


def _worktree(directory: Path) -> Path:
    path = directory / "worktree"
    path.mkdir(parents=True, exist_ok=True)
    return path


class BusyCounter:
    """SESSION_BUSY refusals the benchmark retried (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.refusals = 0

    def add(self, refusals: int) -> None:
        if refusals:
            with self._lock:
                self.refusals += refusals


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
    if not _same_json(value, expected):
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


def _raise_problems(problems: Sequence[str]) -> None:
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise CheckFailed(f"{len(problems)} problems: {shown}{more}")


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
        records = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                records.append(value)
        return records

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


# ----- scenario description ---------------------------------------------------------------------


@dataclass
class Measured:
    """One sampler of a scenario; references have no target."""

    label: str
    sampler: Sampler[Any]
    target_s: float | None = None  # the median (seconds per unit) must be at most this


@dataclass
class Setup:
    measured: list[Measured]
    # Figures computed after timing, while the daemon still runs.
    details: Callable[[list[Stats]], dict[str, Any]] | None = None
    # Problems found once everything the set-up opened is closed (the daemon stopped).
    shutdown_problems: Callable[[], list[str]] | None = None


# Builds a scenario's samplers in its own directory; what it opens goes on the ExitStack.
SetupFactory = Callable[[ExitStack, Path, bool], Setup]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    unit: str  # one measured unit: "request", "execution", "process"
    setup: SetupFactory
    plan: Plan
    throughput: bool = False  # report units per second rather than seconds per unit


@dataclass
class Figure:
    label: str
    stats: Stats
    target_s: float | None = None
    throughput: bool = False

    @property
    def met(self) -> bool | None:
        return None if self.target_s is None else self.stats.median <= self.target_s

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"label": self.label,
                                **{f"{k}_s": v for k, v in self.stats.to_dict().items() if k != "n"},
                                "n": self.stats.n, "target_s": self.target_s, "met": self.met}
        if self.throughput:
            data["per_second_median"] = 1 / self.stats.median
            data["per_second_p10"] = 1 / self.stats.p90  # the slowest 10% of samples
            data["per_second_p90"] = 1 / self.stats.p10
            data["target_per_second"] = None if self.target_s is None else 1 / self.target_s
        return data


@dataclass
class ScenarioResult:
    scenario: str
    description: str
    unit: str
    status: Literal["ok", "wrong_result", "error"]
    error: str | None
    failed: str | None  # the label of the sampler that failed
    figures: list[Figure]
    runs: int
    warmup: int
    throughput: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def met(self) -> bool | None:
        """Every figure with a target met it (None: no target; False: failed untimed)."""
        verdicts = [f.met for f in self.figures if f.met is not None]
        if not self.figures:
            return False
        return all(verdicts) if verdicts else None

    def to_dict(self) -> dict[str, Any]:
        main = self.figures[0] if self.figures else None
        return {
            "scenario": self.scenario,
            "description": self.description,
            "unit": self.unit,
            "status": self.status,
            "error": self.error,
            "failed": self.failed,
            "median_s": main.stats.median if main else None,
            "p10_s": main.stats.p10 if main else None,
            "p90_s": main.stats.p90 if main else None,
            "n_runs": main.stats.n if main else 0,
            "target_s": main.target_s if main else None,
            "met": self.met,
            "runs": self.runs,
            "warmup": self.warmup,
            "figures": [f.to_dict() for f in self.figures],
            "details": self.details,
        }


# ----- repl-latency -----------------------------------------------------------------------------


def _spread(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {"n": len(ordered), "median_s": statistics.median(ordered),
            "p10_s": percentile(ordered, 0.10), "p90_s": percentile(ordered, 0.90),
            "p99_s": percentile(ordered, 0.99)}


def latency_setup(code: str = TRIVIAL, expected: Any = 2) -> SetupFactory:
    """POST /executions/repl of `code` on one keep-alive connection, every reply checked against
    `expected`; GET /health on the same connection for reference."""

    def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
        daemon = start_daemon(stack, directory)
        control = Connection(daemon.url)
        stack.callback(control.close)
        template_id = create_template(control, "bench-latency")
        session_id = create_session(control, template_id, _worktree(directory))
        conn = Connection(daemon.url)  # the measured one, kept alive throughout
        stack.callback(conn.close)
        body = repl_body(session_id, code)
        repl_headers = {**JSON_HEADERS, "X-Request-Id": REPL_REQUEST_ID}
        health_headers = {"X-Request-Id": HEALTH_REQUEST_ID}
        busy = BusyCounter()

        def health_ok(reply: Any) -> None:
            if reply.status != 200 or reply.json() != {"status": "ok"}:
                raise CheckFailed(f"GET /health: {reply.describe()}")

        def details(stats: list[Stats]) -> dict[str, Any]:
            # Warm-up requests are in the log too: a handful against hundreds of samples.
            server = _spread(daemon.access_durations_s(REPL_PATH, REPL_REQUEST_ID))
            server_health = _spread(daemon.access_durations_s(HEALTH_PATH, HEALTH_REQUEST_ID))
            out: dict[str, Any] = {"daemon_repl_duration": server,
                                   "daemon_health_duration": server_health,
                                   "session_busy_refusals": busy.refusals,
                                   "connections_opened": conn.opened}
            if server:
                out["outside_daemon_middleware_s"] = stats[0].median - server["median_s"]
            return out

        return Setup([
            Measured(f"POST /executions/repl {code!r}, keep-alive, persisted",
                     Sampler(lambda _: post_repl(conn, body, repl_headers, busy),
                             check=repl_expects(session_id, code, expected)),
                     LATENCY_TARGET_S),
            Measured("reference: GET /health on the same connection",
                     Sampler(lambda _: conn.request("GET", HEALTH_PATH, None, health_headers),
                             check=health_ok)),
        ], details=details, shutdown_problems=daemon.shutdown_problems)

    return setup


# ----- repl-throughput --------------------------------------------------------------------------


@dataclass
class Window:
    """One fixed-duration window of the throughput scenario: fresh sessions and connections."""

    session_ids: list[str]
    connections: list[Connection]
    answered: list[int]  # 201s per thread
    latencies: list[list[float]]
    failures: list[str] = field(default_factory=list)
    deadline: float = 0.0
    elapsed_s: float = 0.0
    daemon_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    capped: bool = False


def _process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def throughput_setup(threads: int = THREADS, quick_window_s: float = 1.5,
                     full_window_s: float = 4.0, code: str = TRIVIAL,
                     expected: Any = 2) -> SetupFactory:
    """`threads` client threads, each with its own session and keep-alive connection, running
    `code` back to back for a fixed window; checked afterwards against the API's listing."""

    def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
        window_s = quick_window_s if quick else full_window_s
        daemon = start_daemon(stack, directory)
        control = Connection(daemon.url)
        stack.callback(control.close)
        template_id = create_template(control, "bench-throughput")
        worktree = _worktree(directory)
        busy = BusyCounter()
        done: list[Window] = []  # every window checked, warm-up ones first
        live: list[Window] = []

        def open_window() -> Window:
            ids = [create_session(control, template_id, worktree) for _ in range(threads)]
            conns = [Connection(daemon.url) for _ in ids]
            window = Window(ids, conns, [0] * threads, [[] for _ in ids])
            live.append(window)
            for conn in conns:  # connect outside the timed part
                if conn.request("GET", HEALTH_PATH).status != 200:
                    raise ApiError("GET /health failed")
            return window

        def close_window(window: Window) -> None:
            for conn in window.connections:
                conn.close()
            for session_id in window.session_ids:
                close_session(control, session_id)
            live.remove(window)

        def close_all() -> None:
            for window in list(live):
                close_window(window)

        stack.callback(close_all)  # runs before the daemon stops (LIFO)

        def run(window: Window) -> Window:
            stop = threading.Event()
            start = threading.Barrier(threads + 1)

            def worker(k: int) -> None:
                conn, session_id = window.connections[k], window.session_ids[k]
                body = repl_body(session_id, code)
                headers = dict(JSON_HEADERS)
                check = repl_expects(session_id, code, expected)
                latencies = window.latencies[k]
                clock = time.perf_counter
                answered = 0
                try:
                    start.wait()
                    while not stop.is_set() and clock() < window.deadline:
                        t0 = clock()
                        reply = post_repl(conn, body, headers, busy)
                        latencies.append(clock() - t0)
                        if reply.status != 201:
                            raise CheckFailed(f"thread {k}: expected 201, got {reply.describe()}")
                        if answered % CHECK_EVERY == 0:
                            check(reply)
                        answered += 1
                        if answered >= MAX_PER_SESSION:
                            window.capped = True
                            stop.set()
                except BaseException as exc:  # noqa: BLE001 - reported by the check
                    window.failures.append(f"thread {k}: {exc}" if isinstance(exc, CheckFailed)
                                           else f"thread {k}: {type(exc).__name__}: {exc}")
                    stop.set()
                finally:
                    window.answered[k] = answered

            workers = [threading.Thread(target=worker, args=(k,), name=f"bench-{k}")
                       for k in range(threads)]
            for w in workers:
                w.start()
            daemon_cpu, client_cpu = daemon.cpu_seconds(), _process_cpu_s()
            t0 = time.perf_counter()
            window.deadline = t0 + window_s
            start.wait()
            for w in workers:
                w.join()
            window.elapsed_s = time.perf_counter() - t0
            window.daemon_cpu_s = daemon.cpu_seconds() - daemon_cpu
            window.client_cpu_s = _process_cpu_s() - client_cpu
            return window

        def verify(window: Window) -> None:
            _raise_problems(window.failures)
            problems: list[str] = []
            for session_id, answered in zip(window.session_ids, window.answered, strict=True):
                problems += store_problems(list_executions(control, session_id), answered,
                                           session_id, code, expected)
            _raise_problems(problems)
            done.append(window)

        def details(stats: list[Stats]) -> dict[str, Any]:
            timed = done[-stats[0].n:]
            latencies = [x for w in timed for per_thread in w.latencies for x in per_thread]
            return {
                "threads": threads,
                "window_s": window_s,
                "executions_per_window": [sum(w.answered) for w in timed],
                "windows_capped": sum(w.capped for w in timed),
                "stored_equals_201s": True,  # verified after every window, or the scenario fails
                "session_busy_refusals": busy.refusals,
                "daemon_cpu_cores": statistics.median(w.daemon_cpu_s / w.elapsed_s for w in timed),
                "client_cpu_cores": statistics.median(w.client_cpu_s / w.elapsed_s for w in timed),
                "latency_under_load": _spread(latencies),
                "usable_cores": machine_info()["usable_cores"],
            }

        return Setup([
            Measured(f"{threads} threads × POST /executions/repl {code!r} ({threads} sessions, "
                     f"{threads} connections), {window_s:g} s windows",
                     CountedSampler(run, before=open_window, after=close_window, check=verify,
                                    count=lambda w: sum(w.answered)),
                     1 / THROUGHPUT_TARGET_PER_S),
        ], details=details, shutdown_problems=daemon.shutdown_problems)

    return setup


# ----- whole processes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    label: str
    argv: list[str]
    target: bool = True  # a reference (python -c pass) has none


_PYENV_SHIM = re.compile(rb'libexec/pyenv"?\s+exec')


def _is_pyenv_shim(path: str) -> bool:
    try:
        with open(path, "rb") as script:
            return _PYENV_SHIM.search(script.read(4096)) is not None
    except OSError:
        return False


def installed_scripts() -> list[tuple[str, str]]:
    """Every distinct `vm-system` executable on PATH, in PATH order, then the console script next
    to this interpreter if PATH has none of it: (path, "pyenv shim" | "console script").

    Run through pyenv, PATH starts with the interpreter's own bin directory (the console script
    itself) and the shell's PATH (with the shim a user's shell runs) follows: both are listed."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    beside = Path(sys.executable).parent / "vm-system"
    candidates = [Path(d) / "vm-system" for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    for path in [*candidates, beside]:
        real = os.path.realpath(path)
        if real in seen or not (path.is_file() and os.access(path, os.X_OK)):
            continue
        seen.add(real)
        found.append((str(path), "pyenv shim" if _is_pyenv_shim(str(path)) else "console script"))
    return found


def cli_commands(args: Sequence[str], shown: str) -> list[Command]:
    """The ways to run `vm-system ARGS`: the module, each installed `vm-system` (the console
    script, a pyenv shim in front of it); then `python -c pass` for reference."""
    commands = [Command(f"python -m supervisor.adapters.cli {shown}",
                        [sys.executable, "-m", "supervisor.adapters.cli", *args])]
    for path, kind in installed_scripts():
        commands.append(Command(f"vm-system {shown} ({kind})", [path, *args]))
    commands.append(Command("reference: python -c pass", [sys.executable, "-c", "pass"], False))
    return commands


def _run_process(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    # cwd = the repository root, as for a developer checkout (`-m` finds the package there).
    return subprocess.run(list(argv), cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S, check=False)


def process_expects(expected: str, match: Literal["exact", "prefix"]) -> Callable[[Any], None]:
    """A check of a finished process: exit 0 and its stdout (stripped) `expected`, or starting
    with it."""

    def check(proc: Any) -> None:
        if proc.returncode != 0:
            tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
            raise CheckFailed(f"exit status {proc.returncode}: {tail[0]}")
        out = proc.stdout.strip()
        good = out == expected if match == "exact" else out.startswith(expected)
        if not good:
            raise CheckFailed(f"expected stdout {'' if match == 'exact' else 'starting with '}"
                              f"{expected!r}, got {out[:200]!r}")

    return check


def process_setup(args: Sequence[str], shown: str, expected: str,
                  match: Literal["exact", "prefix"],
                  commands: Callable[[], list[Command]] | None = None) -> SetupFactory:
    def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
        listed = commands() if commands else cli_commands(args, shown)
        check = process_expects(expected, match)
        bare = process_expects("", "exact")
        return Setup([
            Measured(c.label, Sampler(lambda _, argv=c.argv: _run_process(argv),
                                      check=check if c.target else bare),
                     PROCESS_TARGET_S if c.target else None)
            for c in listed
        ], details=lambda _: {"commands": {c.label: c.argv for c in listed}})

    return setup


# ----- the suite --------------------------------------------------------------------------------


def scenarios() -> list[Scenario]:
    return [
        Scenario("repl-latency", "POST /api/v1/executions/repl '1+1' on a keep-alive connection, "
                 "request to response, persisted; GET /health on it for reference", "request",
                 latency_setup(), Plan(quick_runs=200, full_runs=2000, quick_warmup=20,
                                       full_warmup=200)),
        Scenario("repl-throughput", f"{THREADS} client threads for a fixed window, each on its "
                 "own session and keep-alive connection; stored executions checked against the "
                 "201s", "execution", throughput_setup(),
                 Plan(quick_runs=2, full_runs=5, quick_warmup=1, full_warmup=1), throughput=True),
        Scenario("cli-help", "vm-system --help as a new process (module, console script); "
                 "python -c pass for reference", "process",
                 process_setup(["--help"], "--help", "usage: vm-system", "prefix"),
                 Plan(quick_runs=3, full_runs=15, quick_warmup=1, full_warmup=2)),
        Scenario("cli-run", "vm-system run -e '1+1' as a new process (module, console script); "
                 "python -c pass for reference", "process",
                 process_setup(["run", "-e", TRIVIAL], f"run -e {TRIVIAL!r}", "2", "exact"),
                 Plan(quick_runs=3, full_runs=15, quick_warmup=1, full_warmup=2)),
    ]


def _failure(scenario: Scenario, quick: bool, status: Literal["wrong_result", "error"],
             label: str | None, exc: BaseException) -> ScenarioResult:
    message = str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"
    return ScenarioResult(scenario.name, scenario.description, scenario.unit, status,
                          f"{label}: {message}" if label else message, label, [],
                          scenario.plan.runs(quick), scenario.plan.warmup(quick),
                          scenario.throughput)


def _measure(scenario: Scenario, quick: bool, directory: Path, stack: ExitStack,
             opened: list[Setup]) -> ScenarioResult:
    runs, warmup = scenario.plan.runs(quick), scenario.plan.warmup(quick)
    try:
        setup = scenario.setup(stack, directory, quick)
    except CheckFailed as exc:
        return _failure(scenario, quick, "wrong_result", None, exc)
    except Exception as exc:  # noqa: BLE001 - reported as this scenario's failure
        return _failure(scenario, quick, "error", None, exc)
    opened.append(setup)
    labels = [m.label for m in setup.measured]
    for m in setup.measured:
        try:
            # Warming up each sampler apart (not inside `interleave`) tells which one failed.
            m.sampler.warm_up(max(warmup, 1))
        except CheckFailed as exc:
            return _failure(scenario, quick, "wrong_result", m.label, exc)
        except Exception as exc:  # noqa: BLE001
            return _failure(scenario, quick, "error", m.label, exc)
    try:
        stats = interleave([m.sampler for m in setup.measured], runs=runs, warmup=0)
    except SampleError as exc:
        status: Literal["wrong_result", "error"] = (
            "wrong_result" if isinstance(exc.cause, CheckFailed) else "error")
        return _failure(scenario, quick, status, labels[exc.index], exc.cause)
    try:
        details = setup.details(stats) if setup.details else {}
    except Exception as exc:  # noqa: BLE001
        return _failure(scenario, quick, "error", "details", exc)
    figures = [Figure(m.label, s, m.target_s, scenario.throughput)
               for m, s in zip(setup.measured, stats, strict=True)]
    return ScenarioResult(scenario.name, scenario.description, scenario.unit, "ok", None, None,
                          figures, runs, warmup, scenario.throughput, details)


def run_scenario(scenario: Scenario, *, quick: bool, directory: Path) -> ScenarioResult:
    """Check every sampler's answer, then time them in turn; a wrong answer is never timed.
    Afterwards (the daemon stopped), a shutdown problem makes the scenario an error."""
    opened: list[Setup] = []
    with ExitStack() as stack:
        result = _measure(scenario, quick, directory, stack, opened)
    for setup in opened:
        problems = setup.shutdown_problems() if setup.shutdown_problems else []
        if problems:
            result.details["shutdown_problems"] = problems
            if result.ok:
                result.status = "error"
                result.error = "; ".join(problems)
    return result


def run_benchmark(*, quick: bool, only: Sequence[str] | None = None,
                  suite: Sequence[Scenario] | None = None, directory: Path | None = None,
                  progress: Callable[[str], None] | None = None) -> BenchReport:
    """Run the scenarios, each in its own temporary directory (inside `directory` when given)."""
    chosen = choose(suite if suite is not None else scenarios(), only)
    started = datetime.now(timezone.utc)
    machine = machine_info()  # before the run: its load average is the machine's, not ours
    t0 = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="http-bench-", dir=directory) as tmp:
        for scenario in chosen:
            if progress:
                progress(f"{scenario.name} ...")
            result = run_scenario(scenario, quick=quick, directory=Path(tmp) / scenario.name)
            if progress:
                main = result.figures[0] if result.figures else None
                progress(f"{scenario.name}: {result.status}"
                         + (f" median {format_seconds(main.stats.median)}" if main else ""))
            results.append(result)
    return BenchReport("http", "quick" if quick else "full", started.isoformat(timespec="seconds"),
                       round(time.perf_counter() - t0, 3), machine, package_versions(VERSIONED),
                       code_identity(MEASURED_PACKAGES), results)


# ----- profile of the daemon -------------------------------------------------------------------

# A sample belongs to the phase of its innermost frame matching one of these (in this order).
_PHASES = (
    ("engine: sandbox/, wasmtime", ("sandbox/", "wasmtime/")),
    ("store: store/ (SQLite)", ("store/",)),
    ("response JSON (http_json: records, json.dumps)", ("adapters/http_json.py",)),
    ("middleware RequestContext, route handler", ("adapters/http_app.py",)),
    ("supervisor core (the rest of sup.repl)", ("supervisor/",)),
    ("access log (structlog)", ("structlog/",)),
    ("FastAPI + pydantic (routing, body validation)", ("fastapi/", "pydantic")),
    ("starlette", ("starlette/",)),
    ("thread hop (anyio worker threads, queue)", ("anyio/", "concurrent/futures/", "queue.py")),
    ("uvicorn + h11 (HTTP/1.1 parsing and writing)", ("uvicorn/", "h11/")),
    ("asyncio event loop", ("asyncio/", "selectors.py")),
)
_WHOLE_REPL = "Supervisor.repl (supervisor/core.py"


def _phase_of(frames: Sequence[str]) -> str:
    for frame in reversed(frames):
        for phase, markers in _PHASES:
            if any(m in frame for m in markers):
                return phase
    return "other"


def summarize_profile(raw: str) -> tuple[int, dict[str, int], int]:
    """py-spy's raw (folded) output: (samples, samples per phase, samples inside sup.repl)."""
    total, whole_repl = 0, 0
    phases: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        n = int(count)
        total += n
        phase = _phase_of(frames)
        phases[phase] = phases.get(phase, 0) + n
        if any(_WHOLE_REPL in f for f in frames):
            whole_repl += n
    return total, phases, whole_repl


def profile_daemon(seconds: float = 10.0, *, threads: int = THREADS,
                   directory: Path | None = None) -> str:
    """py-spy (`--gil`: the thread holding the GIL) on a daemon under the throughput workload:
    where the daemon's Python time goes, by phase."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not on PATH (pip install py-spy)")
    with tempfile.TemporaryDirectory(prefix="http-profile-", dir=directory) as tmp, \
            ExitStack() as stack:
        daemon = start_daemon(stack, Path(tmp) / "daemon")
        control = Connection(daemon.url)
        stack.callback(control.close)
        template_id = create_template(control, "bench-profile")
        worktree = _worktree(Path(tmp))
        ids = [create_session(control, template_id, worktree) for _ in range(threads)]
        stop = threading.Event()
        answered = [0] * threads
        failures: list[str] = []
        busy = BusyCounter()

        def worker(k: int) -> None:
            conn = Connection(daemon.url)
            body = repl_body(ids[k], TRIVIAL)
            try:
                while not stop.is_set():
                    reply = post_repl(conn, body, JSON_HEADERS, busy)
                    if reply.status != 201:
                        raise CheckFailed(f"expected 201, got {reply.describe()}")
                    answered[k] += 1
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(f"thread {k}: {exc}")
            finally:
                conn.close()

        workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        time.sleep(1.0)  # warm
        out_path = Path(tmp) / "profile.txt"
        before, t0 = sum(answered), time.perf_counter()
        try:
            recorded = subprocess.run(
                [spy, "record", "--pid", str(daemon.pid), "--duration", str(max(1, round(seconds))),
                 "--rate", "250", "--gil", "--nonblocking", "--format", "raw",
                 "--output", str(out_path)],
                capture_output=True, text=True, timeout=seconds + 60, check=False)
        finally:
            during, elapsed = sum(answered) - before, time.perf_counter() - t0
            stop.set()
            for w in workers:
                w.join()
        if recorded.returncode != 0 or not out_path.exists():
            raise RuntimeError(f"py-spy failed: {recorded.stderr.strip()[-500:]}")
        if failures:
            raise CheckFailed("; ".join(failures[:3]))
        total, phases, whole_repl = summarize_profile(out_path.read_text(encoding="utf-8"))
    lines = [f"py-spy --gil on the daemon ({elapsed:.1f} s, {threads} client threads on their own "
             f"sessions, {during} executions of {TRIVIAL!r}, {during / elapsed:,.0f}/s); "
             f"{total} samples of the thread holding the GIL", ""]
    for phase, n in sorted(phases.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {100 * n / max(total, 1):5.1f}%  {phase}")
    lines += ["", f"  {100 * whole_repl / max(total, 1):5.1f}%  inside sup.repl (engine, store and "
              "core together: the pipeline)"]
    return "\n".join(lines)


# ----- reporting --------------------------------------------------------------------------------


def _rate(per_second: float) -> str:
    return f"{per_second:,.0f}/s"


def _met_text(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


def _figure_cells(figure: Figure) -> tuple[str, str, str]:
    s = figure.stats
    if figure.throughput:
        target = "-" if figure.target_s is None else f"≥ {_rate(1 / figure.target_s)}"
        return _rate(1 / s.median), f"{_rate(1 / s.p90)}–{_rate(1 / s.p10)}", target
    target = "-" if figure.target_s is None else f"≤ {format_seconds(figure.target_s)}"
    return (format_seconds(s.median), f"{format_seconds(s.p10)}–{format_seconds(s.p90)}",
            target)


def render_table_of(results: Iterable[ScenarioResult]) -> str:
    headers = ["scenario", "measured", "n", "median", "p10–p90", "target", "met?"]
    rows = []
    for r in results:
        if not r.figures:
            rows.append([r.scenario, f"FAILED ({r.status})", "0", "-", "-", "-", "NO"])
            continue
        for index, figure in enumerate(r.figures):
            median, spread, target = _figure_cells(figure)
            rows.append([r.scenario if index == 0 else "", figure.label, str(figure.stats.n),
                         median, spread, target, _met_text(figure.met)])
    return render_table(headers, rows)


def _spread_text(spread: dict[str, float] | None) -> str:
    if not spread:
        return "-"
    return (f"{format_seconds(spread['median_s'])} (p10–p90 {format_seconds(spread['p10_s'])}–"
            f"{format_seconds(spread['p90_s'])}, p99 {format_seconds(spread['p99_s'])})")


def _notes(result: ScenarioResult) -> list[str]:
    d, name = result.details, result.scenario
    notes = []
    if result.error:
        notes.append(f"{name}: {result.status}: {result.error}")
    if "daemon_repl_duration" in d:
        notes.append(f"{name}: the daemon's own duration_ms (access log) of the same repl requests "
                     f"{_spread_text(d['daemon_repl_duration'])}; of GET /health "
                     f"{_spread_text(d['daemon_health_duration'])}")
        if "outside_daemon_middleware_s" in d:
            notes.append(f"{name}: client median − daemon median = "
                         f"{format_seconds(d['outside_daemon_middleware_s'])} outside the daemon's "
                         "middleware (client, loopback, uvicorn's parsing and event loop); "
                         f"{d['connections_opened']} TCP connection(s) for the measured requests")
    if "daemon_cpu_cores" in d:
        notes.append(f"{name}: {d['threads']} threads, {d['window_s']:g} s windows, "
                     f"{', '.join(str(n) for n in d['executions_per_window'])} executions per "
                     "timed window, every one found in the store (count, status, value); CPU "
                     f"used: daemon {d['daemon_cpu_cores']:.2f} cores, this client "
                     f"{d['client_cpu_cores']:.2f} cores of {d['usable_cores']} usable; "
                     f"latency per request under this load {_spread_text(d['latency_under_load'])}")
    if d.get("session_busy_refusals"):
        notes.append(f"{name}: {d['session_busy_refusals']} SESSION_BUSY refusals on sessions "
                     f"nothing else was using (retried after {BUSY_PAUSE_S * 1e3:g} ms; the wait "
                     "is in the figures)")
    if d.get("shutdown_problems") and not result.error:
        notes.append(f"{name}: {'; '.join(d['shutdown_problems'])}")
    return notes


def render_report(report: BenchReport) -> str:
    machine, versions = report.machine, report.versions
    load = machine.get("load_average")
    lines = [
        f"vm-system HTTP and process benchmark ({report.mode} mode, {report.started_at}, "
        f"{report.duration_s:.1f} s)",
        f"machine: {machine['cpu_model']}, {machine['cores']} cores "
        f"({machine['usable_cores']} usable), {machine['platform']}, load average at start "
        + (" ".join(f"{x:.2f}" for x in load) if load else "unknown"),
        "versions: " + ", ".join(f"{k} {v or 'missing'}" for k, v in versions.items()),
        "code: " + ", ".join(f"{k} {v}" for k, v in report.code.items()),
        "",
        render_table_of(report.results),
    ]
    notes = [n for r in report.results for n in _notes(r)]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)




def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_bench",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few runs (< 20 s)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write every figure as JSON")
    parser.add_argument("--only", metavar="SCENARIO", action="append",
                        help="run only this scenario (repeatable)")
    parser.add_argument("--dir", metavar="DIR", type=Path,
                        help="make the temporary databases inside DIR (default: the system's)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--profile", action="store_true",
                        help="profile the daemon under the throughput workload with py-spy "
                             "(pip install py-spy) and exit")
    args = parser.parse_args(argv)

    if args.list:
        for s in scenarios():
            write(f"{s.name:16} {s.description}")
        return 0
    if args.profile:
        write(profile_daemon(directory=args.dir))
        return 0
    try:
        report = run_benchmark(quick=args.quick, only=args.only, directory=args.dir,
                               progress=None if args.quiet else progress)
    except ValueError as exc:
        parser.error(str(exc))
    return publish(report, render_report(report), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
