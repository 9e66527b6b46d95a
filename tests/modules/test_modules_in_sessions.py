"""The modules through a real supervisor (real SQLite store, real sandboxes, real files and
subprocesses): enabled by a template, scoped by its capability, reached with `require` and
`import`, recorded as host calls, restored with the session."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor
from supervisor.errors import CapabilityInvalid, ModuleNotAllowed

CATCH = "(() => {{ try {{ {code}; return 'no error'; }} catch (e) {{ return [e.code, e.message]; }} }})()"


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "worktree"
    root.mkdir()
    (root / "notes.txt").write_text("hello from the worktree\n")
    return root


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    s = Supervisor.open(tmp_path / "vm.db", run_root=tmp_path)
    yield s
    s.close()


def template(sup: Supervisor, modules: dict[str, dict[str, Any] | None]) -> str:
    t = sup.templates.create(f"t{len(sup.templates.list())}")
    for name, config in modules.items():
        sup.templates.add_module(t.id, name)
        if config is not None:
            sup.templates.add_capability(t.id, name, name, config=config)
    return t.id


def session(sup: Supervisor, worktree: Path, modules: dict[str, dict[str, Any] | None]) -> str:
    return sup.create_session(template(sup, modules), "ws", "abc", str(worktree)).id


def value(sup: Supervisor, sid: str, code: str) -> Any:
    ex = sup.repl(sid, code)
    assert ex.status == "ok", (ex.status, ex.error)
    assert ex.result is not None
    return ex.result["json"]


def caught(sup: Supervisor, sid: str, code: str) -> Any:
    return value(sup, sid, CATCH.format(code=code))


# ----- enabling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["crypto", "timers", "util", "path", "buffer", "events"])
def test_catalog_entries_that_grant_nothing_are_refused(sup: Supervisor, name: str) -> None:
    t = sup.templates.create("t")
    with pytest.raises(ModuleNotAllowed, match="not in the module catalog"):
        sup.templates.add_module(t.id, name)


def test_a_module_not_enabled_is_a_clear_error_for_require_and_import(sup: Supervisor, worktree: Path) -> None:
    sid = session(sup, worktree, {})
    assert caught(sup, sid, "require('fs')") == ["ERR_MODULE_NOT_ENABLED",
                                                  "module 'fs' is not enabled for this template"]
    assert caught(sup, sid, "require('node:exec')") == ["ERR_MODULE_NOT_ENABLED",
                                                         "module 'exec' is not enabled for this template"]
    assert caught(sup, sid, "require('left-pad')") == ["MODULE_NOT_FOUND", "Cannot find module 'left-pad'"]
    (worktree / "imp.mjs").write_text("import fs from 'fs';\nexport const x = 1;\n")
    ex = sup.run_file(sid, "imp.mjs")
    assert ex.status == "error"
    assert ex.error is not None
    assert ex.error["message"] == "could not load module 'fs': module 'fs' is not enabled for this template"
    assert value(sup, sid, "typeof fetch") == "undefined"


def test_a_granted_module_survives_a_script_that_tampers_with_host_and_require(
        sup: Supervisor, worktree: Path) -> None:
    sid = session(sup, worktree, {"fs": None})
    fs_read = "require('fs').readFileSync('notes.txt')"
    saved = value(sup, sid, f"globalThis.keep = require; delete globalThis.host; {fs_read}")
    assert saved == "hello from the worktree\n"
    assert value(sup, sid, "keep('fs').readFileSync('notes.txt')") == "hello from the worktree\n"


# ----- capabilities -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "config", "field"), [
    ("net", {}, "kind"),
    ("fs", {"root": "/etc"}, "config.root"),
    ("fs", {"root": "../up"}, "config.root"),
    ("fs", {"write": "yes"}, "config.write"),
    ("fs", {"max_file_bytes": 0}, "config.max_file_bytes"),
    ("fs", {"max_file_bytes": 2**40}, "config.max_file_bytes"),
    ("fs", {"surprise": 1}, "config.surprise"),
    ("database", {"max_rows": -1}, "config.max_rows"),
    ("database", {"file": "/var/db.sqlite"}, "config.file"),
    ("database", {"file": "db.sqlite", "shared": True}, "config"),
    ("exec", {"allow": ["./local-script"]}, "config.allow"),
    ("exec", {"allow": ["no-such-command-anywhere"]}, "config.allow"),
    ("exec", {"timeout_ms": 10**9}, "config.timeout_ms"),
    ("exec", {"env": {"1BAD": "x"}}, "config.env"),
    ("exec", {"env": {"LD_PRELOAD": "/tmp/x.so"}}, "config"),
    ("fetch", {"origins": ["ftp://example.com"]}, "config.origins.0"),
    ("fetch", {"origins": ["http://example.com/path"]}, "config.origins.0"),
    ("fetch", {"origins": [{"origin": "https://api.example.com", "headers": {"A": 1}}]},
     "config.origins.0.headers.A"),
])
def test_an_invalid_capability_is_refused_naming_the_field(sup: Supervisor, kind: str,
                                                           config: dict[str, Any], field: str) -> None:
    t = sup.templates.create("t")
    with pytest.raises(CapabilityInvalid) as info:
        sup.templates.add_capability(t.id, kind, "c", config=config)
    assert info.value.details["field"] == field
    assert sup.templates.list_capabilities(t.id) == []


def test_a_capability_is_stored_completed_and_its_secrets_are_never_shown(sup: Supervisor) -> None:
    t = sup.templates.create("t")
    cap = sup.templates.add_capability(t.id, "fetch", "api", config={"origins": [
        {"origin": "https://api.example.com", "headers": {"Authorization": "Bearer s3cret"}}]})
    assert cap.config["max_requests"] == 100
    assert cap.config["origins"][0]["headers"] == {"Authorization": "<redacted>"}
    shown = json.dumps([c.config for c in sup.templates.list_capabilities(t.id)])
    shown += json.dumps([c.config for c in sup.templates.get(t.id).capabilities])
    assert "s3cret" not in shown and "<redacted>" in shown


def test_a_template_has_one_enabled_capability_per_kind(sup: Supervisor) -> None:
    t = sup.templates.create("t")
    sup.templates.add_capability(t.id, "fs", "one")
    sup.templates.add_capability(t.id, "fs", "spare", enabled=False)
    with pytest.raises(CapabilityInvalid, match="already has an enabled fs capability"):
        sup.templates.add_capability(t.id, "fs", "two")


def test_exec_allowlist_is_resolved_when_the_capability_is_added(sup: Supervisor) -> None:
    t = sup.templates.create("t")
    cap = sup.templates.add_capability(t.id, "exec", "tools", config={"allow": ["echo"]})
    assert os.path.isabs(cap.config["resolved"]["echo"])


# ----- fs ---------------------------------------------------------------------------------------


def test_fs_reads_by_default_and_writes_only_when_granted(sup: Supervisor, worktree: Path) -> None:
    ro = session(sup, worktree, {"fs": None})
    assert value(sup, ro, "require('fs').readdirSync('.')") == ["notes.txt"]
    code, _message = caught(sup, ro, "require('fs').writeFileSync('x.txt', 'no')")
    assert code == "EROFS"
    assert not (worktree / "x.txt").exists()

    rw = session(sup, worktree, {"fs": {"write": True}})
    script = ("const fs = require('fs'); fs.mkdirSync('out/deep', {recursive: true});"
              "fs.writeFileSync('out/deep/a.txt', 'één'); fs.appendFileSync('out/deep/a.txt', '!');"
              "[fs.readFileSync('out/deep/a.txt'), fs.existsSync('out/deep/a.txt'),"
              " fs.statSync('out/deep').isDirectory(), fs.statSync('out/deep/a.txt').size]")
    assert value(sup, rw, script) == ["één!", True, True, 6]
    assert (worktree / "out/deep/a.txt").read_text() == "één!"
    assert caught(sup, rw, "require('fs').readFileSync('missing.txt')") == [
        "ENOENT", "ENOENT: no such file or directory, open 'missing.txt'"]


def test_fs_bytes_cross_both_ways(sup: Supervisor, worktree: Path) -> None:
    sid = session(sup, worktree, {"fs": {"write": True}})
    script = ("const fs = require('fs'); fs.writeFileSync('b.bin', new Uint8Array([0, 255, 128, 10]));"
              "Array.from(fs.readFileSync('b.bin', {encoding: null}))")
    assert value(sup, sid, script) == [0, 255, 128, 10]
    assert (worktree / "b.bin").read_bytes() == bytes([0, 255, 128, 10])
    assert value(sup, sid, "require('fs').readFileSync('b.bin', 'base64')") == "AP+ACg=="


def test_fs_escapes_through_javascript_are_refused(sup: Supervisor, worktree: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the host's secret")
    (worktree / "link").symlink_to(secret)
    (worktree / "dirlink").symlink_to(tmp_path)
    sid = session(sup, worktree, {"fs": {"write": True}})
    for path in ["/etc/passwd", "../secret.txt", "link", "dirlink/secret.txt", "a/../../secret.txt"]:
        code, message = caught(sup, sid, f"require('fs').readFileSync({json.dumps(path)})")
        assert code in ("EACCES", "ELOOP", "EXDEV"), (path, code, message)
        assert str(tmp_path) not in message
    code, _ = caught(sup, sid, "require('fs').writeFileSync('dirlink/planted.txt', 'x')")
    assert code in ("EACCES", "ELOOP", "EXDEV")
    assert not (tmp_path / "planted.txt").exists()
    # Straight at the host function, past the guest half: the host checks the same.
    raw = value(sup, sid, "try { host['fs.readFile']('/etc/passwd', 'utf8') } catch (e) { [e.name, e.message] }")
    assert raw == ["HostError", "EACCES\x1fEACCES: permission denied, open '/etc/passwd'"]


def test_fs_calls_are_host_calls_in_the_events_without_their_arguments(sup: Supervisor, worktree: Path) -> None:
    sid = session(sup, worktree, {"fs": None})
    ex = sup.repl(sid, "require('fs').readFileSync('notes.txt'); "
                       "try { require('fs').readFileSync('nope') } catch (e) {} 1")
    calls = [e.payload for e in sup.list_events(ex.id) if e.type == "host_call"]
    assert [(c["name"], c["ok"]) for c in calls] == [("fs.readFile", True), ("fs.readFile", False)]
    assert "nope" in calls[1]["error"]
    assert all("args" not in c for c in calls)


def test_fs_import_names_and_promises(sup: Supervisor, worktree: Path) -> None:
    sid = session(sup, worktree, {"fs": None})
    (worktree / "m.mjs").write_text(
        "import fs, { readFileSync } from 'node:fs';\n"
        "export const same = fs.readFileSync === readFileSync;\n"
        "export const text = await fs.promises.readFile('notes.txt');\n")
    ex = sup.run_file(sid, "m.mjs")
    assert ex.status == "ok", ex.error
    assert ex.result is not None
    assert ex.result["json"] == {"same": True, "text": "hello from the worktree\n"}


# ----- database ---------------------------------------------------------------------------------


def test_database_outlives_executions_and_restarts_and_goes_with_the_session(
        tmp_path: Path, worktree: Path) -> None:
    db = tmp_path / "vm.db"
    with Supervisor.open(db, run_root=tmp_path) as first:
        sid = session(first, worktree, {"database": None})
        first.repl(sid, "const db = require('database'); db.exec('CREATE TABLE t (a INTEGER, b TEXT)');"
                        "db.exec('INSERT INTO t VALUES (?, ?)', 1, 'one')")
        assert value(first, sid, "require('database').exec('INSERT INTO t VALUES (?, ?)', 2, 'two')") == {
            "success": True, "rowsAffected": 1, "lastInsertId": 2}
        first.flush_images()
    files = list((tmp_path / "vm.db.data" / "sessions").iterdir())
    assert [f.name for f in files] == [f"{sid}.sqlite"]
    with Supervisor.open(db, run_root=tmp_path) as second:
        rows = value(second, sid, "db.query('SELECT a, b FROM t ORDER BY a')")
        assert rows == [{"a": 1, "b": "one"}, {"a": 2, "b": "two"}]
        second.close_session(sid)
    assert not files[0].exists()


def test_database_refuses_other_drivers_and_dsns(sup: Supervisor, worktree: Path) -> None:
    sid = session(sup, worktree, {"database": None})
    assert caught(sup, sid, "require('database').configure('postgres', 'host=db')")[0] == "ERR_DATABASE_DRIVER"
    code, message = caught(sup, sid, "require('database').configure('sqlite3', '/tmp/vm.db')")
    assert code == "ERR_DATABASE_DSN"
    assert "/tmp/vm.db" in message
    assert caught(sup, sid, "require('database').query(\"ATTACH DATABASE 'x.db' AS x\")")[0] != "no error"


# ----- exec -------------------------------------------------------------------------------------


def test_exec_runs_allowed_commands_only_in_the_worktree_with_an_empty_environment(
        sup: Supervisor, worktree: Path) -> None:
    os.environ["VM_SYSTEM_TEST_SECRET"] = "leak"
    try:
        sid = session(sup, worktree, {"exec": {"allow": ["echo", "pwd", "env"]}})
        assert value(sup, sid, "require('exec').run('echo', ['a;b', '$(id)'])") == "a;b $(id)\n"
        assert value(sup, sid, "require('exec').run('pwd', [])") == f"{os.path.realpath(worktree)}\n"
        assert "leak" not in value(sup, sid, "require('exec').run('env', [])")
    finally:
        del os.environ["VM_SYSTEM_TEST_SECRET"]
    code, _ = caught(sup, sid, "require('exec').run('sh', ['-c', 'id'])")
    assert code != "no error"
    code, _ = caught(sup, sid, "require('exec').run('/bin/echo', ['x'])")
    assert code != "no error"


def test_exec_run_throws_on_a_non_zero_exit_and_spawn_reports_it(sup: Supervisor, worktree: Path) -> None:
    sid = session(sup, worktree, {"exec": {"allow": ["false", "cat"]}})
    assert caught(sup, sid, "require('exec').run('false', [])")[0] == "ERR_CHILD_PROCESS_FAILED"
    got = value(sup, sid, "(async () => { const r = await require('exec').spawn('cat', [], {input: 'piped'});"
                          " return [r.code, r.stdout]; })()")
    assert got == [0, "piped"]


@pytest.mark.parametrize("call", [
    "require('exec').run('head', ['-c', '3000', 'big.txt'])",
    "require('exec').spawn('head', ['-c', '3000', 'big.txt']).then(r => r.stdout.length)",
    # Caught or not, the command's output has been counted.
    "try { require('exec').run('head', ['-c', '3000', 'big.txt']); } catch (e) {} 'done'",
])
def test_what_a_command_prints_counts_against_the_output_limit(sup: Supervisor, worktree: Path,
                                                                call: str) -> None:
    (worktree / "big.txt").write_text("x" * 5000)
    t = template(sup, {"exec": {"allow": ["head"]}})
    sup.templates.patch_settings(t, {"limits": {"max_output_kb": 2}})
    sid = sup.create_session(t, "ws", "abc", str(worktree)).id
    ex = sup.repl(sid, call)
    assert (ex.status, ex.error and ex.error["kind"]) == ("limit_exceeded", "output_limit"), ex.error
    small = sup.repl(sid, "require('exec').run('head', ['-c', '1000', 'big.txt']).length")
    assert (small.status, small.result and small.result["json"]) == ("ok", 1000)


def test_exec_sleep_is_stopped_at_the_wall_limit_and_leaves_no_process(sup: Supervisor, worktree: Path) -> None:
    t = template(sup, {"exec": {"allow": ["sleep"]}})
    sup.templates.patch_settings(t, {"limits": {"wall_ms": 500}})
    sid = sup.create_session(t, "ws", "abc", str(worktree)).id
    for code in ["require('exec').run('sleep', ['10'])",
                 # A script that catches the command's ETIMEDOUT still ends at the wall limit.
                 "try { require('exec').run('sleep', ['10']) } catch (e) { 'caught' }",
                 "require('exec').spawn('sleep', ['10'])"]:
        ex = sup.repl(sid, code)
        assert (ex.status, ex.error and ex.error["message"]) == ("timeout", "wall-clock limit of 500 ms exceeded")
        assert not _processes_named("sleep", "10")


def test_a_runaway_query_is_stopped_at_the_wall_limit_and_the_database_still_answers(
        sup: Supervisor, worktree: Path) -> None:
    t = template(sup, {"database": None})
    sup.templates.patch_settings(t, {"limits": {"wall_ms": 300}})
    sid = sup.create_session(t, "ws", "abc", str(worktree)).id
    ex = sup.repl(sid, "require('database').query('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                       "SELECT x + 1 FROM c) SELECT count(*) AS n FROM c')")
    assert ex.status == "timeout"
    assert value(sup, sid, "require('database').query('SELECT 41 + 1 AS n')") == [{"n": 42}]


class _Trickle(BaseHTTPRequestHandler):
    """Answers one byte a tenth of a second, for ever; notes when the client went away."""

    gone = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"x")
                self.wfile.flush()
                threading.Event().wait(0.1)
        except OSError:
            _Trickle.gone.set()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_slow_server_is_cut_off_at_the_wall_limit_and_its_socket_closed(
        sup: Supervisor, worktree: Path) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        t = template(sup, {"fetch": {"origins": [origin]}})
        sup.templates.patch_settings(t, {"limits": {"wall_ms": 400}})
        sid = sup.create_session(t, "ws", "abc", str(worktree)).id
        ex = sup.repl(sid, f"fetch('{origin}/').then((r) => r.text())")
        assert ex.status == "timeout"
        assert _Trickle.gone.wait(10), "the server still had its client 10 s after the stop (hang guard)"
        peers = [line for line in Path("/proc/self/net/tcp").read_text().splitlines()[1:]
                 if line.split()[2].endswith(f":{httpd.server_address[1]:04X}") and line.split()[3] == "01"]
        assert peers == [], peers
    finally:
        httpd.shutdown()
        httpd.server_close()


def _processes_named(program: str, *args: str) -> list[int]:
    """Pids whose command line is `program args...` (program by its base name)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            parts = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        if os.path.basename(parts[0]) == program.encode() and parts[1:] == [a.encode() for a in args]:
            found.append(int(pid))
    return found


# ----- fetch ------------------------------------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "auth": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_reaches_an_allowed_origin_with_its_secret_and_nothing_else(
        sup: Supervisor, worktree: Path, server: str) -> None:
    sid = session(sup, worktree, {"fetch": {"origins": [
        {"origin": server, "headers": {"Authorization": "Bearer s3cret"}}]}})
    got = value(sup, sid, f"(async () => {{ const r = await fetch('{server}/x?y=1');"
                          " return [r.status, r.ok, r.headers.get('content-type'), await r.json()]; })()")
    assert got == [200, True, "application/json", {"path": "/x?y=1", "auth": "Bearer s3cret"}]
    other = server.replace("127.0.0.1", "localhost")
    code = value(sup, sid, f"fetch('{other}/').then(() => 'fetched', (e) => e.code)")
    assert code != "fetched"


def test_database_values_json_cannot_carry_arrive_as_javascript_values(sup: Supervisor, worktree: Path) -> None:
    sid = session(sup, worktree, {"database": None})
    got = value(sup, sid, "const r = require('database').query(\"SELECT x'00ff' AS b, 9007199254740993 AS big,"
                          " 1e999 AS inf, -1e999 AS ninf\")[0];"
                          "[Array.from(r.b), typeof r.big, String(r.big), r.inf === Infinity, r.ninf === -Infinity]")
    assert got == [[0, 255], "bigint", "9007199254740993", True, True]


def test_every_command_run_is_recorded_with_how_it_ended_but_not_its_arguments(
        sup: Supervisor, worktree: Path) -> None:
    sid = session(sup, worktree, {"exec": {"allow": ["false", "echo"]}})
    ex = sup.repl(sid, "(async () => { try { require('exec').run('false', ['s3cret']) } catch (e) {}"
                       " await require('exec').spawn('echo', ['hidden']); })()")
    calls = [e.payload for e in sup.list_events(ex.id) if e.type == "host_call"]
    assert [(c["name"], c["ok"], c["detail"]) for c in calls] == [
        ("exec.run", True, {"command": "false", "exit": 1, "signal": None}),
        ("exec.spawn", True, {"command": "echo", "exit": 0, "signal": None})]
    assert "s3cret" not in json.dumps(calls) and "hidden" not in json.dumps(calls)


# ----- one-shot runs -------------------------------------------------------------------------

def test_a_one_shot_run_gets_its_templates_modules_in_the_run_root(sup: Supervisor,
                                                                      tmp_path: Path) -> None:
    (tmp_path / "input.txt").write_text("from the run root")
    tid = template(sup, {"fs": None, "database": None})
    ex = sup.run(code="const fs = require('fs'); const db = require('database');"
                      "db.exec('CREATE TABLE t (x)'); db.exec('INSERT INTO t VALUES (?)', 7);"
                      "[fs.readFileSync('input.txt', 'utf8'), db.query('SELECT x FROM t')[0].x]",
                 template_id=tid)
    assert ex.status == "ok", ex.error
    assert ex.result is not None and ex.result["json"] == ["from the run root", 7]
    names = [e.payload["name"] for e in sup.store.list_events(ex.id) if e.type == "host_call"]
    assert {"fs.readFile", "database.exec", "database.query"} <= set(names)
    # The run's private database went with it: the next run starts empty.
    again = sup.run(code="require('database').query(\"SELECT name FROM sqlite_master\").length",
                    template_id=tid)
    assert again.result is not None and again.result["json"] == 0
    assert not list((sup.data_dir / "sessions").glob("*.sqlite"))


def test_a_one_shot_run_without_a_template_gets_no_module(sup: Supervisor) -> None:
    ex = sup.run(code=CATCH.format(code="require('fs')"))
    assert ex.result is not None
    assert ex.result["json"] == ["ERR_MODULE_NOT_ENABLED", "module 'fs' is not enabled for this template"]


def test_one_shot_runs_share_a_templates_shared_database(sup: Supervisor) -> None:
    tid = template(sup, {"database": {"shared": True}})
    first = sup.run(code="const db = require('database'); db.exec('CREATE TABLE t (x)');"
                         "db.exec('INSERT INTO t VALUES (1)').rowsAffected", template_id=tid)
    assert first.result is not None and first.result["json"] == 1
    second = sup.run(code="require('database').query('SELECT count(*) AS n FROM t')[0].n",
                     template_id=tid)
    assert second.result is not None and second.result["json"] == 1
