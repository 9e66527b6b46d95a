"""Helpers of tests/http: a real daemon process, a client that checks the cross-cutting rules of
docs/api.md on every response, worktrees, and small wrappers over the routes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from supervisor.logs import read_json_log

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0

# The error codes of docs/api.md and their statuses, written down here independently of the
# server's own table (supervisor/adapters/http/errors.py), so a drift in either shows.
API_STATUS = {
    "VALIDATION_ERROR": 400,
    "INVALID_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "TEMPLATE_NOT_FOUND": 404,
    "SESSION_NOT_FOUND": 404,
    "EXECUTION_NOT_FOUND": 404,
    "FILE_NOT_FOUND": 404,
    "PACKAGE_NOT_FOUND": 404,
    "ROUTE_NOT_FOUND": 404,
    "SESSION_NOT_READY": 409,
    "SESSION_BUSY": 409,
    "TEMPLATE_EXISTS": 409,
    "METHOD_NOT_ALLOWED": 405,
    "PAYLOAD_TOO_LARGE": 413,
    "INVALID_PATH": 422,
    "STARTUP_MODE_UNSUPPORTED": 422,
    "MODULE_NOT_ALLOWED": 422,
    "LIBRARY_NOT_FOUND": 422,
    "INVALID_CAPABILITY": 422,
    "INTEGRITY_MISMATCH": 422,
    "PACKAGE_REFUSED": 422,
    "INTERNAL": 500,
    "REGISTRY_UNREACHABLE": 502,
    "REGISTRY_BAD_RESPONSE": 502,
    "TOO_MANY_STREAMS": 503,
    "WORKER_LOST": 503,
    "SHUTTING_DOWN": 503,
}
# The 503s: retryable, each with a Retry-After.
RETRYABLE = {"TOO_MANY_STREAMS", "WORKER_LOST", "SHUTTING_DOWN"}
# The 502s: the package store's registry failed; the message is written for the client.
UPSTREAM = {"REGISTRY_UNREACHABLE", "REGISTRY_BAD_RESPONSE"}

# RFC 3339, UTC, with microseconds.
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|\+00:00)$")

TERMINAL_TYPES = {"value", "exception", "limit"}


class Daemon:
    """One `vm-system serve` process on 127.0.0.1:0, with its own db, library dir and cwd."""

    def __init__(self, root: Path, *extra: str, db: Path | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.db = db or root / "db.sqlite"
        self.libs = root / "libs"
        self.libs.mkdir(exist_ok=True)
        (self.libs / "greet@1.0.0.js").write_text("globalThis.greet = (n) => 'hello ' + n;\n")
        # A file for the one-shot `/run {"path": ...}`: relative to the daemon's working directory.
        (root / "oneshot.js").write_text("console.log('one shot'); 6 * 7\n")
        self._stderr_path = root / f"stderr-{uuid.uuid4().hex[:8]}.log"
        self._stderr = open(self._stderr_path, "wb")  # closed in stop()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.pop("VM_SYSTEM_TOKEN", None)
        cmd = [sys.executable, "-m", "supervisor.adapters.cli", "serve", "--db", str(self.db),
               "--listen", "127.0.0.1:0", "--library-dir", str(self.libs), "--log-format", "json",
               *extra]
        self.proc = subprocess.Popen(cmd, cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env)
        self.pid = self.proc.pid
        self._stdout: list[str] = []
        self._first_line = threading.Event()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        if not self._first_line.wait(START_TIMEOUT_S) or not self._stdout:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"the daemon did not announce its address; stderr:\n{self.stderr_tail()}")
        match = re.fullmatch(r"vm-system listening on (http://127\.0\.0\.1:\d+)", self._stdout[0])
        if match is None:
            self.proc.kill()
            raise RuntimeError(f"unexpected first stdout line: {self._stdout[0]!r}")
        self.url = match.group(1)
        self.api = self.url + "/api/v1"

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:  # drains the pipe until the process exits
            self._stdout.append(raw.decode("utf-8", "replace").rstrip("\n"))
            self._first_line.set()
        self._first_line.set()

    def stdout_lines(self) -> list[str]:
        return list(self._stdout)

    def rss_kb(self) -> int:
        """VmRSS of the daemon process, in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written to stderr so far (anything else is ignored)."""
        self._stderr.flush()
        return read_json_log(self._stderr_path)

    def stderr_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self._stderr_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = STOP_TIMEOUT_S) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the daemon did not exit within {timeout}s of SIGTERM") from None
        self._reader.join(5)
        self._stderr.close()
        return rc

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then the exit code."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)


def start_daemon(root: Path, *extra: str, db: Path | None = None) -> Daemon:
    return Daemon(root, *extra, db=db)


# ----- a client that checks every response ------------------------------------------------------


class ContractViolation(AssertionError):
    pass


def check_response(response: httpx.Response) -> None:
    """The rules that hold for every response (docs/api.md, cross-cutting): an X-Request-Id header,
    and every error in the one envelope with a code whose status matches the table."""
    rid = response.headers.get("x-request-id", "")
    if not rid:
        raise ContractViolation(f"no X-Request-Id on {response.request.method} {response.request.url}")
    content_type = response.headers.get("content-type", "")
    if response.status_code < 400:
        if content_type.startswith("application/json"):
            response.read()
            check_times(response.json(), f"{response.request.method} {response.request.url}")
        return
    if content_type.startswith("text/event-stream"):
        raise ContractViolation("an error answered as an event stream")
    response.read()
    check_envelope(response)


# Fields that hold what a client or a script gave (run-file's args and env, a value, an event's
# payload, a capability's config, a package's manifest): a key `ts` or `x_at` there is data.
CLIENT_DATA = frozenset({"args", "env", "input", "result", "payload", "config", "manifest", "details",
                         "settings", "limits", "runtime", "resolver", "dependencies"})


def check_times(value: Any, where: str, key: str = "") -> None:
    """Every time field (`*_at`, `ts`) of the API's own records is RFC 3339 UTC with
    microseconds (or null)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in CLIENT_DATA:
                check_times(v, where, k)
    elif isinstance(value, list):
        for v in value:
            check_times(v, where, key)
    elif ((key.endswith("_at") or key == "ts") and value is not None
          and not (isinstance(value, str) and TIME_RE.match(value))):
        raise ContractViolation(f"{where}: {key}={value!r} is not RFC 3339 UTC with microseconds")


def check_envelope(response: httpx.Response) -> dict[str, Any]:
    where = f"{response.request.method} {response.request.url} → {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        raise ContractViolation(f"{where}: error body is not JSON: {response.text[:200]!r}") from None
    if not (isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], dict)):
        raise ContractViolation(f"{where}: not the error envelope: {body!r}")
    error = body["error"]
    if set(error) != {"code", "message", "details"}:
        raise ContractViolation(f"{where}: envelope keys {sorted(error)}")
    if not isinstance(error["code"], str) or not isinstance(error["message"], str) \
            or not isinstance(error["details"], dict):
        raise ContractViolation(f"{where}: envelope types wrong: {error!r}")
    expected = API_STATUS.get(error["code"])
    if expected is not None and expected != response.status_code:
        raise ContractViolation(f"{where}: code {error['code']} must be {expected}")
    if response.status_code == 503:
        if error["code"] not in RETRYABLE or not response.headers.get("retry-after", "").isdigit():
            raise ContractViolation(f"{where}: a 503 must be retryable with a Retry-After: {error!r}")
    elif response.status_code == 502:
        if error["code"] not in UPSTREAM:
            raise ContractViolation(f"{where}: a 502 must be a registry failure: {error!r}")
    elif response.status_code >= 500 and error["code"] != "INTERNAL":
        raise ContractViolation(f"{where}: a 5xx must be INTERNAL, got {error['code']}")
    return error


def checked_client(base_url: str, **kwargs: Any) -> httpx.Client:
    kwargs.setdefault("timeout", 60.0)
    return httpx.Client(base_url=base_url, event_hooks={"response": [check_response]}, **kwargs)


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the response is the error `code` with `status`; the envelope's error object."""
    assert response.status_code == status, (response.status_code, response.text)
    error = check_envelope(response)
    assert error["code"] == code, error
    return error


# ----- worktrees and resources --------------------------------------------------------------------


def make_worktree(root: Path) -> Path:
    """A worktree with scripts, a directory, and symlinks leading out of it."""
    wt = root / "wt"
    wt.mkdir()
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.js").write_text("'the secret'")
    (wt / "main.js").write_text("console.log('running main'); 40 + 2\n")
    (wt / "args.js").write_text(
        "try { args.a = 99; } catch (e) {}\n"
        "try { env.E = 'changed'; } catch (e) {}\n"
        "JSON.stringify({a: args.a, e: env.E})\n")
    (wt / "throws.js").write_text("throw new TypeError('file threw')\n")
    (wt / "first.js").write_text("globalThis.order = (globalThis.order || []).concat(['first']);\n")
    (wt / "second.js").write_text("globalThis.order = (globalThis.order || []).concat(['second']);\n")
    (wt / "boom.js").write_text("throw new Error('startup boom: /very/secret/path')\n")
    (wt / "sub").mkdir()
    (wt / "sub" / "inner.js").write_text("'inner'\n")
    (wt / "escape.js").symlink_to(outside / "secret.js")
    (wt / "outdir").symlink_to(outside, target_is_directory=True)
    (wt / "inside_link.js").symlink_to(wt / "main.js")
    return wt


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def new_template(client: httpx.Client, *, limits: dict[str, int] | None = None,
                 name: str | None = None) -> dict[str, Any]:
    r = client.post("/templates", json={"name": name or unique()})
    assert r.status_code == 201, r.text
    template = r.json()
    if limits:
        r = client.patch(f"/templates/{template['id']}/settings", json={"limits": limits})
        assert r.status_code == 200, r.text
    return template


def session_body(template_id: str, worktree: Path | str) -> dict[str, Any]:
    return {"template_id": template_id, "workspace_id": "ws-1", "base_commit_oid": "abc123",
            "worktree_path": str(worktree)}


def new_session(client: httpx.Client, template_id: str, worktree: Path) -> dict[str, Any]:
    r = client.post("/sessions", json=session_body(template_id, worktree))
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["status"] == "ready", session
    return session


def repl(client: httpx.Client, session_id: str, code: str) -> dict[str, Any]:
    r = client.post("/executions/repl", json={"session_id": session_id, "input": code})
    assert r.status_code == 201, r.text
    return r.json()


def events_of(client: httpx.Client, execution_id: str, after_seq: int | None = None) -> list[dict[str, Any]]:
    params = {} if after_seq is None else {"after_seq": after_seq}
    r = client.get(f"/executions/{execution_id}/events", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for_running(client: httpx.Client, session_id: str, timeout: float = 10.0,
                     kind: str = "repl") -> dict[str, Any]:
    """The session's execution that is `running` (polls the list)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get("/executions", params={"session_id": session_id, "limit": 5})
        assert r.status_code == 200, r.text
        for execution in r.json():
            if execution["status"] == "running" and execution["kind"] == kind:
                return execution
        time.sleep(0.01)
    raise AssertionError(f"no running {kind} execution in session {session_id} after {timeout}s")


class Background:
    """Run a call in a thread; `.result()` joins and returns (or re-raises)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self.finished_at: float | None = None

        def target() -> None:
            try:
                self._value = fn()
            except BaseException as exc:  # handed back to the caller
                self._error = exc
            finally:
                self.finished_at = time.monotonic()

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def result(self, timeout: float = 60.0) -> Any:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"background call still running after {timeout}s")
        if self._error is not None:
            raise self._error
        return self._value


# ----- server-sent events -------------------------------------------------------------------------


def sse_events(response: httpx.Response, stop_after: int | None = None) -> Iterator[dict[str, Any]]:
    """Parse an event stream: dicts with id, event, data (decoded JSON) and the arrival time, on
    the monotonic clock (`arrived`) and as an aware UTC datetime comparable with the daemon's
    stored timestamps (`arrived_at`: same host, same wall clock)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    count = 0
    for line in response.iter_lines():
        if line == "":
            if data or fields:
                yield {"id": fields.get("id"), "event": fields.get("event"),
                       "data": json.loads("\n".join(data)) if data else None,
                       "arrived": time.monotonic(), "arrived_at": datetime.now(UTC)}
                count += 1
                if stop_after is not None and count >= stop_after:
                    return
            fields, data = {}, []
            continue
        if line.startswith(":"):
            continue  # a comment (heartbeat)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        else:
            fields[name] = value
