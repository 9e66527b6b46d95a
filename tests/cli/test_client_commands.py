"""The CLI's client side: `vm-system template|session|exec|ops ...` against a real daemon.

The end-to-end tests start `vm-system serve` on a free port of 127.0.0.1 (a temporary SQLite
file, a temporary library folder) and drive it through subprocesses of
`python -m supervisor.adapters.cli`, checking what a user sees: stdout, stderr, exit codes.
The unit tests (SSE parsing, error lines, argument checks) need no daemon; the SSE reconnect
test uses a small real HTTP server of the standard library that breaks its stream on purpose.
"""

from __future__ import annotations

import io
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from supervisor.adapters.client import (
    ApiError,
    Client,
    DaemonUnreachable,
    _split_lines,
    check_base_url,
    parse_sse,
)

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm(*args: str, url: str | None = None, env: dict[str, str] | None = None,
       stdin: str | None = None, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("VM_SYSTEM_URL", "VM_SYSTEM_TOKEN")}
    if url is not None:
        full_env["VM_SYSTEM_URL"] = url
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "supervisor.adapters.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=full_env, input=stdin)


def one_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def ok_json(out: subprocess.CompletedProcess[str]) -> Any:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# ----- a real daemon ------------------------------------------------------------------------


class Daemon:
    def __init__(self, tmp: Path, token: str | None = None) -> None:
        self.libs = tmp / "libs"
        self.libs.mkdir(parents=True, exist_ok=True)
        (self.libs / "greet@1.0.js").write_text("globalThis.greet = (n) => `hello, ${n}`;\n")
        args = [sys.executable, "-m", "supervisor.adapters.cli", "serve", "--db", str(tmp / "db.sqlite"),
                "--listen", "127.0.0.1:0", "--library-dir", str(self.libs), "--log-format", "json"]
        if token:
            args += ["--token", token]
        env = {k: v for k, v in os.environ.items() if k != "VM_SYSTEM_TOKEN"}
        self.log = open(tmp / "daemon.log", "w")  # closed in stop()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     cwd=tmp, env=env)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"the daemon did not start: {line!r}\n{(tmp / 'daemon.log').read_text()}")
        self.url = line.strip().rsplit(" ", 1)[-1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("daemon"))
    yield d
    d.stop()


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    wt = tmp_path / "worktree"
    wt.mkdir()
    (wt / "init.js").write_text("globalThis.counter = 40;\nconsole.log('startup ran');\n")
    (wt / "main.js").write_text(
        "console.log('args', args, 'env', env);\n"
        "console.warn('careful');\n"
        "counter += 2;\n"
        "greet(env.WHO) + ' ' + counter\n")
    return wt


# ----- no daemon: parsing, formatting, arguments --------------------------------------------


def test_sse_parsing_follows_the_event_stream_rules() -> None:
    text = ("\ufeff: a comment\n"
            "id: 1\nevent: console\ndata: {\"seq\": 1}\n\n"
            "data:first\ndata: second\n\n"  # no space after the colon; two data lines
            ": alive\n\n"  # a heartbeat: no event
            "id: 3\r\nevent: value\r\ndata: {\"seq\": 3}\r\n\r\n"
            "event: dropped-no-data\n\n"
            "id: 4\ndata: unfinished")  # no blank line at the end: dropped
    messages = list(parse_sse(_split_lines([text])))
    assert [(m.event, m.data, m.id) for m in messages] == [
        ("console", '{"seq": 1}', "1"),
        ("message", "first\nsecond", "1"),  # the last id carries over
        ("value", '{"seq": 3}', "3"),
    ]


@pytest.mark.parametrize("chunks", [
    ["a\r", "\nb\n"],  # CRLF split across chunks
    ["a\r\n", "b\n"],
    ["a", "\r\nb", "\n"],
    ["a\rb\n"],  # a lone CR ends a line too
])
def test_line_splitting_across_chunks(chunks: list[str]) -> None:
    assert list(_split_lines(chunks)) == ["a", "b"]


def test_error_lines() -> None:
    assert ApiError("SESSION_BUSY", "another execution\nis running", status=409).one_line() == \
        "SESSION_BUSY: another execution is running"
    assert ApiError("INTERNAL", "internal error", status=500, request_id="r-1").one_line() == \
        "INTERNAL: internal error (request id r-1)"
    line = DaemonUnreachable("http://127.0.0.1:9", "connection refused").one_line()
    assert "no vm-system daemon at http://127.0.0.1:9" in line and "vm-system serve" in line


@pytest.mark.parametrize("url", ["ftp://host", "localhost:3210", "http://", "http://h:99999",
                                 "http://h:1/?x=1"])
def test_bad_server_urls(url: str) -> None:
    with pytest.raises(ValueError):
        check_base_url(url)
    assert check_base_url("http://127.0.0.1:3210/") == "http://127.0.0.1:3210"


def test_settings_options_make_a_partial_patch() -> None:
    import argparse

    from supervisor.adapters.cli.templates import settings_patch

    args = argparse.Namespace(limits='{"cpu_ms": 100, "wall_ms": 900}', runtime=None, resolver=None,
                              assignments=["limits.cpu_ms=500", "runtime.strict=false",
                                           "resolver.roots=[\"src\"]", "resolver.name=word"])
    assert settings_patch(args) == {"limits": {"cpu_ms": 500, "wall_ms": 900},
                                    "runtime": {"strict": False},
                                    "resolver": {"roots": ["src"], "name": "word"}}


def test_human_output_never_reads_markup_and_shows_control_characters() -> None:
    from supervisor.adapters.cli.output import Output

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    buf = Tty()
    out = Output(out=buf, rich=True)
    out.table(["ID", "NAME"], [["1", "[bold]x[/bold]\x1b[31m\nred"]])
    text = buf.getvalue()
    assert "[bold]x[/bold]" in text and "\\x1b[31m\\nred" in text and "\x1b[31m" not in text


def test_help_is_fast_and_imports_no_http_or_rich() -> None:
    code = ("import sys; from supervisor.adapters.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in ('httpx', 'rich', 'structlog', 'fastapi', 'sandbox') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    # The child's CPU time, not the wall clock (a loaded machine stretches that at will): with
    # nothing heavy imported, --help costs ~0.1 s of CPU here; importing httpx, rich and
    # fastapi alone costs ~0.6 s more.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert vm("--help").returncode == 0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu_s < 0.4, f"--help used {cpu_s:.2f} s of CPU"
    for group in ("template", "session", "exec", "ops"):
        assert vm(group, "--help").returncode == 0


def test_settings_help_documents_both_ways_of_patching() -> None:
    out = vm("template", "settings", "--help")
    assert out.returncode == 0
    assert "--set limits.cpu_ms=500" in out.stdout and "--limits" in out.stdout


@pytest.mark.parametrize("args", [
    ["ops", "health"],
    ["template", "list"],
    ["session", "list"],
    ["exec", "repl", str(uuid.uuid4()), "1 + 1"],
    ["exec", "events", str(uuid.uuid4()), "--follow"],
])
def test_no_daemon_gives_one_line_and_exit_4(args: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = vm(*args, "--server-url", url)
    assert out.returncode == 4
    line = one_line(out)
    assert line.startswith(f"vm-system: error: no vm-system daemon at {url} (connection refused)")
    assert "vm-system serve" in line
    assert out.stdout == ""


def test_a_daemon_that_does_not_answer_times_out_in_one_line() -> None:
    # A socket that listens but never answers: the connection is made, the answer never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"  # a trailing slash is fine
        started = time.monotonic()
        out = vm("ops", "health", "--server-url", url, "--timeout", "0.5")
    assert out.returncode == 4
    assert one_line(out) == ("vm-system: error: the vm-system daemon at http://127.0.0.1:"
                             f"{url.rsplit(':', 1)[1].rstrip('/')} did not answer in time (read timeout)")
    # It waited for its own timeout (a lower bound from the timeout itself) ...
    # generous: ... and then gave up: a client that ignored --timeout 0.5 would sit on the
    # silent socket until vm()'s 60 s
    assert 0.5 <= time.monotonic() - started < 10


def test_the_url_comes_from_the_environment_when_not_given() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = vm("ops", "health", url=url)
    assert out.returncode == 4 and url in one_line(out)


@pytest.mark.parametrize(("args", "expected"), [
    (["exec", "run-file", "S", "a.js", "--args", "[1]"], "--args: expected a JSON object"),
    (["exec", "run-file", "S", "a.js", "--env", "{nope"], "--env: not valid JSON"),
    (["template", "settings", "t", "--set", "cpu_ms=5"], "expected SECTION.KEY=VALUE"),
    (["template", "settings", "t", "--set", "limit.cpu_ms=5"], "section must be one of"),
    (["template", "settings", "t", "--limits", "3"], "--limits: expected a JSON object"),
    (["template", "add-capability", "t", "--kind", "fs", "--config", "[]"], "--config"),
    (["exec", "list", "S", "--limit", "0"], "--limit must be at least 1"),
    (["exec", "events", "E", "--after-seq", "-1"], "--after-seq"),
    (["exec", "events", "E", "--after-seq", "soon"], "invalid int value"),
    (["exec", "repl", "S", "   "], "the code is empty"),
    (["template", "create"], "a NAME is required"),
    (["session", "list", "--status", "sleeping"], "invalid choice"),
    (["session", "create", "--template", "t"], "required"),
    (["ops", "health", "--server-url", "localhost:3210"], "invalid server URL"),
    (["ops", "health", "--timeout", "0"], "--timeout"),
    (["template"], "required"),
    (["exec", "nope"], "invalid choice"),
])
def test_bad_arguments_exit_2_before_any_request(args: list[str], expected: str) -> None:
    # The server URL points at nothing: an exit code of 2 proves nothing was sent.
    out = vm(*args, url=f"http://127.0.0.1:{free_port()}")
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert expected in one_line(out)
    assert out.stdout == ""


def test_a_missing_worktree_is_a_usage_error() -> None:
    out = vm("session", "create", "--template", "t", "--worktree", "/no/such/dir",
             url=f"http://127.0.0.1:{free_port()}")
    assert out.returncode == 2 and "no such directory" in one_line(out)


# ----- the SSE client against a stream that breaks --------------------------------------------


def test_event_stream_resumes_after_a_broken_connection() -> None:
    execution_id = str(uuid.uuid4())
    seen_last_ids: list[str | None] = []

    def event(seq: int, kind: str) -> bytes:
        doc = {"execution_id": execution_id, "seq": seq, "ts": "t", "type": kind, "payload": {}}
        return f"id: {seq}\nevent: {kind}\ndata: {json.dumps(doc)}\n\n".encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            assert self.path == f"/api/v1/executions/{execution_id}/events/stream"
            last = self.headers.get("Last-Event-ID")
            seen_last_ids.append(last)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            if last is None:
                # Promise more than is sent, then drop the connection mid-stream.
                body = event(1, "input_echo") + event(2, "console")
                self.send_header("Content-Length", str(len(body) + 1000))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            body = b": alive\n\n" + event(3, "value")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Client(f"http://127.0.0.1:{server.server_address[1]}") as api:
            events = list(api.iter_event_stream(execution_id))
    finally:
        server.shutdown()
        server.server_close()
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert seen_last_ids == [None, "2"]


def test_a_non_json_error_from_something_in_between() -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = b"<html><body>502 Bad Gateway</body></html>"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = vm("template", "list", "--server-url", f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 1
    assert one_line(out).startswith("vm-system: error: HTTP_502: <html>")


# ----- end to end against `vm-system serve` ------------------------------------------------------


def test_health_and_summary(daemon: Daemon) -> None:
    out = vm("ops", "health", url=daemon.url)
    assert (out.returncode, out.stdout) == (0, f"ok: {daemon.url}\n")
    assert ok_json(vm("ops", "health", "--json", url=daemon.url)) == {"status": "ok"}
    summary = ok_json(vm("ops", "runtime-summary", "--json", url=daemon.url))
    assert {"active_sessions", "active_session_ids"} <= set(summary)
    out = vm("ops", "runtime-summary", url=daemon.url)
    assert out.returncode == 0 and out.stdout.startswith("active sessions  ")


def test_template_commands(daemon: Daemon) -> None:
    name = f"tpl-{uuid.uuid4().hex[:8]}"
    out = vm("template", "create", name, url=daemon.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"created template {name}\n")
    dup = vm("template", "create", name, url=daemon.url)
    assert dup.returncode == 1
    assert one_line(dup).startswith("vm-system: error: TEMPLATE_EXISTS: ")

    listed = ok_json(vm("template", "list", "--json", url=daemon.url))
    template = next(t for t in listed if t["name"] == name)
    assert set(template) == {"id", "name", "engine", "created_at", "updated_at"}
    table = vm("template", "list", url=daemon.url)
    assert table.stdout.splitlines()[0].split() == ["ID", "NAME", "ENGINE", "CREATED"]
    assert any(line.startswith(template["id"]) and name in line for line in table.stdout.splitlines())

    # Settings: shown as SECTION.KEY lines; patched with --set and a JSON section, by name.
    shown = vm("template", "settings", name, url=daemon.url)
    assert "limits.cpu_ms" in shown.stdout and "resolver.extensions" in shown.stdout
    patched = ok_json(vm("template", "settings", name, "--set", "limits.cpu_ms=500",
                         "--runtime", '{"strict": false}', "--json", url=daemon.url))
    assert patched["limits"]["cpu_ms"] == 500 and patched["runtime"]["strict"] is False
    assert patched["limits"]["wall_ms"] == 5000  # untouched
    too_big = vm("template", "settings", name, "--set", "limits.cpu_ms=999999999", url=daemon.url)
    assert too_big.returncode == 1 and one_line(too_big).startswith("vm-system: error: VALIDATION_ERROR: ")

    # Startup files, modules, libraries, capabilities.
    startup = ok_json(vm("template", "add-startup", name, "init.js", "--order", "3", "--json",
                         url=daemon.url))
    assert (startup["path"], startup["order_index"], startup["mode"]) == ("init.js", 3, "eval")
    assert vm("template", "add-startup", name, "../out.js", url=daemon.url).returncode == 1
    mode = vm("template", "add-startup", name, "x.js", "--mode", "module", url=daemon.url)
    assert one_line(mode).startswith("vm-system: error: STARTUP_MODE_UNSUPPORTED: ")
    listing = vm("template", "list-startup", name, url=daemon.url).stdout.splitlines()
    assert listing[0].split() == ["ORDER", "MODE", "PATH", "ID"] and "init.js" in listing[1]

    assert vm("template", "add-module", name, "fetch", url=daemon.url).stdout == "added module fetch\n"
    retired = vm("template", "add-module", name, "crypto", url=daemon.url)
    assert one_line(retired).startswith("vm-system: error: MODULE_NOT_ALLOWED: crypto is not in the module catalog")
    builtin = vm("template", "add-module", name, "json", url=daemon.url)
    assert one_line(builtin).startswith("vm-system: error: MODULE_NOT_ALLOWED: ")
    assert [m["name"] for m in ok_json(vm("template", "list-modules", name, "--json", url=daemon.url))] == ["fetch"]
    assert vm("template", "remove-module", name, "fetch", url=daemon.url).returncode == 0
    assert ok_json(vm("template", "list-modules", name, "--json", url=daemon.url)) == []

    assert vm("template", "add-library", name, "greet@1.0", url=daemon.url).returncode == 0
    missing = vm("template", "add-library", name, "nope@1.0", url=daemon.url)
    assert one_line(missing).startswith("vm-system: error: LIBRARY_NOT_FOUND: ")
    assert "greet@1.0" in vm("template", "list-libraries", name, url=daemon.url).stdout

    cap = ok_json(vm("template", "add-capability", name, "--kind", "fs", "--name", "docs",
                     "--config", '{"root": "docs", "write": true}', "--json", url=daemon.url))
    assert (cap["kind"], cap["name"], cap["enabled"]) == ("fs", "docs", True)
    assert (cap["config"]["root"], cap["config"]["write"], cap["config"]["max_file_bytes"]) == (
        "docs", True, 8 * 1024 * 1024)
    caps = vm("template", "list-capabilities", name, url=daemon.url).stdout
    assert "docs" in caps and "yes" in caps
    bad = vm("template", "add-capability", name, "--kind", "fs", "--config", '{"write": 1}', url=daemon.url)
    assert one_line(bad).startswith("vm-system: error: INVALID_CAPABILITY: invalid fs capability: config.write")
    unknown = vm("template", "add-capability", name, "--kind", "env", url=daemon.url)
    assert one_line(unknown).startswith("vm-system: error: INVALID_CAPABILITY: capability kind must be one of")
    assert vm("template", "remove-capability", name, cap["id"], url=daemon.url).returncode == 0
    assert ok_json(vm("template", "list-capabilities", name, "--json", url=daemon.url)) == []

    detail = ok_json(vm("template", "get", name, "--json", url=daemon.url))
    assert set(detail) == {"template", "settings", "capabilities", "startup_files", "modules", "libraries"}
    assert [lib["name"] for lib in detail["libraries"]] == ["greet@1.0"]
    human = vm("template", "get", template["id"], url=daemon.url).stdout
    for heading in ("settings", "startup files", "modules", "libraries", "capabilities"):
        assert f"\n{heading}\n" in human

    assert vm("template", "remove-startup", name, startup["id"], url=daemon.url).returncode == 0
    gone = vm("template", "delete", name, url=daemon.url)
    assert gone.stdout == f"deleted template {template['id']}\n"
    for args in (["get", name], ["get", template["id"]], ["delete", str(uuid.uuid4())]):
        out = vm("template", *args, url=daemon.url)
        assert out.returncode == 1 and one_line(out).startswith("vm-system: error: TEMPLATE_NOT_FOUND: ")
    bad = vm("template", "get", "not-a-uuid-and-no-such-name", url=daemon.url)
    assert one_line(bad).startswith("vm-system: error: TEMPLATE_NOT_FOUND: ")


def test_session_and_exec_end_to_end(daemon: Daemon, worktree: Path) -> None:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    assert vm("template", "create", name, url=daemon.url).returncode == 0
    assert vm("template", "add-startup", name, "init.js", url=daemon.url).returncode == 0
    assert vm("template", "add-library", name, "greet@1.0", url=daemon.url).returncode == 0
    assert vm("template", "settings", name, "--set", "limits.cpu_ms=300", url=daemon.url).returncode == 0

    # A relative worktree is made absolute on this side.
    created = vm("session", "create", "--template", name, "--worktree", worktree.name,
                 "--workspace-id", "ws-1", "--base-commit", "abc123", "--json",
                 url=daemon.url, cwd=worktree.parent)
    session = ok_json(created)
    sid = session["id"]
    assert (session["status"], session["worktree_path"], session["workspace_id"],
            session["base_commit_oid"]) == ("ready", str(worktree.resolve()), "ws-1", "abc123")
    assert sid in vm("session", "list", "--status", "ready", url=daemon.url).stdout
    got = vm("session", "get", sid, url=daemon.url)
    assert "status       ready" in got.stdout and f"worktree     {worktree.resolve()}" in got.stdout
    assert sid in ok_json(vm("ops", "runtime-summary", "--json", url=daemon.url))["active_session_ids"]

    # repl: the execution's id, console output, then the value, as `vm-system run` prints them.
    out = vm("exec", "repl", sid, "console.log('hi', {a: 1}); console.error('oops'); counter + 2",
             url=daemon.url)
    assert (out.returncode, out.stdout) == (0, "hi { a: 1 }\n42\n")
    id_line, *rest = out.stderr.splitlines()
    assert id_line.startswith("[vm-system] execution ") and rest == ["oops"]
    assert vm("exec", "repl", sid, "undefined", url=daemon.url).stdout == ""
    assert vm("exec", "repl", sid, "-", stdin="greet('stdin')", url=daemon.url).stdout == "'hello, stdin'\n"
    thrown = vm("exec", "repl", sid, "console.log('before'); null.x", url=daemon.url)
    assert thrown.returncode == 1 and thrown.stdout == "before\n"
    assert thrown.stderr.splitlines()[1].startswith("Uncaught TypeError: ")
    limited = vm("exec", "repl", sid, "for (;;) {}", url=daemon.url)
    assert limited.returncode == 3
    assert limited.stderr.splitlines()[1].startswith("vm-system: error: cpu_limit: ")
    as_json = ok_json(vm("exec", "repl", sid, "6 * 7", "--json", url=daemon.url))
    assert (as_json["status"], as_json["kind"], as_json["result"]["json"]) == ("ok", "repl", 42)

    # run-file: args and env reach the script; the state carries over from the repl.
    ran = vm("exec", "run-file", sid, "main.js", "--args", '{"n": 1}', "--env", '{"WHO": "cli"}',
             "--metrics", url=daemon.url)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "args { n: 1 } env { WHO: 'cli' }\n'hello, cli 42'\n"
    assert ran.stderr.splitlines()[1] == "careful" and ran.stderr.splitlines()[2].startswith("wall ")
    for path, code in (("missing.js", "FILE_NOT_FOUND"), ("../escape.js", "INVALID_PATH"),
                       ("/etc/passwd", "INVALID_PATH")):
        bad = vm("exec", "run-file", sid, path, url=daemon.url)
        assert bad.returncode == 1 and one_line(bad).startswith(f"vm-system: error: {code}: "), path

    # exec list / get / events.
    executions = ok_json(vm("exec", "list", sid, "--json", url=daemon.url))
    assert [e["kind"] for e in executions][:2] == ["run_file", "repl"] and executions[-1]["kind"] == "startup"
    assert len(ok_json(vm("exec", "list", sid, "--limit", "2", "--json", url=daemon.url))) == 2
    table = vm("exec", "list", sid, url=daemon.url).stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "KIND", "STATUS", "STARTED"]
    assert table[1].startswith(executions[0]["id"]) and "main.js" in table[1]
    run_file_id = executions[0]["id"]
    shown = vm("exec", "get", run_file_id, url=daemon.url).stdout
    assert "kind           run_file" in shown and "value          'hello, cli 42' (string)" in shown
    assert ok_json(vm("exec", "get", run_file_id, "--json", url=daemon.url))["env"] == {"WHO": "cli"}

    events = vm("exec", "events", run_file_id, url=daemon.url)
    assert events.returncode == 0
    assert [line.split()[:2] for line in events.stdout.splitlines()] == [
        ["1", "input_echo"], ["2", "console"], ["3", "console"], ["4", "value"]]
    assert "[warn] careful" in events.stdout
    after = ok_json(vm("exec", "events", run_file_id, "--after-seq", "2", "--json", url=daemon.url))
    assert [e["seq"] for e in after] == [3, 4]
    # --follow of a finished execution: every event, then the stream ends.
    followed = vm("exec", "events", run_file_id, "--follow", url=daemon.url, timeout=30)
    assert followed.returncode == 0 and followed.stdout == events.stdout
    lines = vm("exec", "events", run_file_id, "--follow", "--after-seq", "3", "--json",
               url=daemon.url, timeout=30).stdout.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [4]

    # Not found and invalid ids: one line, exit 1.
    for args, code in ((["exec", "get", str(uuid.uuid4())], "EXECUTION_NOT_FOUND"),
                       (["exec", "events", str(uuid.uuid4()), "--follow"], "EXECUTION_NOT_FOUND"),
                       (["exec", "get", "nope"], "VALIDATION_ERROR"),
                       (["session", "get", str(uuid.uuid4())], "SESSION_NOT_FOUND"),
                       (["exec", "list", str(uuid.uuid4())], "SESSION_NOT_FOUND")):
        out = vm(*args, url=daemon.url)
        assert out.returncode == 1 and one_line(out).startswith(f"vm-system: error: {code}: "), args

    # close: idempotent; a closed session refuses executions.
    closed = vm("session", "close", sid, url=daemon.url)
    assert closed.stdout == f"session {sid} is closed\n"
    assert ok_json(vm("session", "close", sid, "--json", url=daemon.url))["status"] == "closed"
    refused = vm("exec", "repl", sid, "1", url=daemon.url)
    assert refused.returncode == 1 and one_line(refused).startswith("vm-system: error: SESSION_NOT_READY: ")
    assert sid not in ok_json(vm("ops", "runtime-summary", "--json", url=daemon.url))["active_session_ids"]


def test_follow_prints_events_while_the_execution_runs(daemon: Daemon, worktree: Path) -> None:
    from supervisor.adapters.client import Client

    with Client(daemon.url) as api:
        template = api.create_template(f"follow-{uuid.uuid4().hex[:8]}")
        api.patch_settings(template["id"], limits={"cpu_ms": 10_000, "wall_ms": 20_000})
        session = api.create_session(template["id"], "ws", "oid", str(worktree))
    # About 3 s of ticks: the follower (a new process) connects while most are still to come.
    slow = ("for (let i = 0; i < 12; i++) { console.log('tick ' + i); "
            "const t = Date.now(); while (Date.now() - t < 250) {} } 'done'")
    env = {k: v for k, v in os.environ.items() if k != "VM_SYSTEM_TOKEN"}
    repl = subprocess.Popen([sys.executable, "-m", "supervisor.adapters.cli", "exec", "repl",
                             session["id"], slow, "--server-url", daemon.url], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        running = None
        deadline = time.monotonic() + 20
        with Client(daemon.url) as api:
            while running is None and time.monotonic() < deadline:
                running = next((e for e in api.list_executions(session["id"])
                                if e["kind"] == "repl" and e["status"] == "running"), None)
                time.sleep(0.02)
        assert running is not None, "the execution was never seen running"
        follow = subprocess.Popen([sys.executable, "-m", "supervisor.adapters.cli", "exec", "events",
                                   running["id"], "--follow", "--server-url", daemon.url],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert follow.stdout is not None
        # When each line reached this process, on the wall clock the daemon stamps rows with.
        arrivals = [(datetime.now(UTC), line) for line in follow.stdout]
        assert follow.wait(timeout=30) == 0
        with Client(daemon.url) as api:
            ended_at = datetime.fromisoformat(api.get_execution(running["id"])["ended_at"])
    finally:
        out, err = repl.communicate(timeout=30)
    assert repl.returncode == 0, err
    assert out == "".join(f"tick {i}\n" for i in range(12)) + "'done'\n"
    texts = [line.split(None, 2)[1:] for _, line in arrivals]
    assert texts[0] == ["input_echo", slow + "\n"]
    assert [t[1].strip() for t in texts[1:-1]] == [f"[log] tick {i}" for i in range(12)]
    assert texts[-1] == ["value", "'done' (string)\n"]
    # Streamed, not read at the end. Causality, not a duration: the first tick came out of the
    # follower (through its stdout pipe) before the daemon finished the execution; a follower
    # that fetched the events once it was done, or held its output back, could not manage that.
    # (The follower starts while ~3 s of ticks are still to come.)
    assert arrivals[1][0] < ended_at, (arrivals[1], ended_at)


def test_a_daemon_with_a_token(tmp_path: Path) -> None:
    secured = Daemon(tmp_path, token="s3cret")
    try:
        assert vm("ops", "health", url=secured.url).returncode == 0  # health needs no token
        denied = vm("template", "list", url=secured.url)
        assert denied.returncode == 1 and one_line(denied).startswith("vm-system: error: UNAUTHORIZED: ")
        wrong = vm("template", "list", "--token", "nope", url=secured.url)
        assert one_line(wrong).startswith("vm-system: error: UNAUTHORIZED: ")
        assert vm("template", "list", "--token", "s3cret", url=secured.url).returncode == 0
        assert vm("template", "list", url=secured.url, env={"VM_SYSTEM_TOKEN": "s3cret"}).returncode == 0
    finally:
        secured.stop()


def test_run_with_server_url_runs_on_the_daemon(daemon: Daemon) -> None:
    out = vm("run", "examples/hello.js", "--server-url", daemon.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "hello, vm-system"
    assert out.stdout.splitlines()[-1] == "6765"
    limited = vm("run", "examples/runaway.js", "--wall-ms", "200", "--server-url", daemon.url)
    assert limited.returncode == 3
    assert "wall-clock limit of 200 ms exceeded" in limited.stderr
    as_json = ok_json(vm("run", "-e", "6 * 7", "--json", "--server-url", daemon.url))
    assert (as_json["status"], as_json["value"]["json"]) == ("ok", 42)
    assert ok_json(vm("exec", "get", as_json["execution_id"], "--json", url=daemon.url))["kind"] == "run"
    module = vm("run", "examples/async.mjs", "--server-url", daemon.url)
    assert module.returncode == 2 and "embedded only" in one_line(module)


def test_the_inventory_example_runs_as_its_comment_says(daemon: Daemon) -> None:
    """examples/inventory.mjs: its header's commands, word for word (fs and database)."""
    name = f"inventory-{uuid.uuid4().hex[:8]}"
    assert vm("template", "create", name, url=daemon.url).returncode == 0
    for module in ("fs", "database"):
        assert vm("template", "add-module", name, module, url=daemon.url).returncode == 0
    session = ok_json(vm("session", "create", "--template", name, "--worktree", "examples", "--json",
                         url=daemon.url))
    run = vm("exec", "run-file", session["id"], "inventory.mjs", url=daemon.url)
    assert run.returncode == 0, run.stderr
    assert "3 lines, 432 pieces, worth 45" in run.stdout
    assert "low: [ 'B-300' ]" in run.stdout
    assert not list((ROOT / "examples").glob("*.sqlite"))
