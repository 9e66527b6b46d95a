"""What a module call costs a session, against the same operation done by Python directly in
the same run (issue 14's goals: at most 20 µs more for fs and database, 2 ms for exec).

Each vm-system row is one repl of a session whose template enables the module, making
`CALLS` calls in a loop; the repl's own cost is measured as its own row (a repl of `1+1`) and
taken off in the notes, so the overhead per call is

    (repl of CALLS calls − repl of 1+1) / CALLS − the direct call

and it includes everything a session pays per call: the host call, its JSON both ways, its
budget, and its `host_call` event persisted with the execution. The ratios are against native
QuickJS calling the same direct operation through `add_callable`, with a result of the same
shape as JSON text it parses (an embedding with no isolation at all).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from benchmarks.engines import NATIVE, VM, NativeQuickJS
from benchmarks.harness import Measured, Scenario, Setup
from benchmarks.supervised import BASE_COMMIT, WORKSPACE, BusyCounter, open_supervisor, repl_retrying
from benchmarks.timing import CheckFailed, Plan, Sampler, Stats, format_seconds
from benchmarks.workloads import HostCallable, Workload

PYTHON = "Python, directly"
TRIVIAL_REPL = "vm-system: sup.repl(sid, '1+1') (the repl's own cost)"


@dataclass(frozen=True)
class ModuleCase:
    name: str  # the scenario's name
    module: str
    config: dict[str, Any]
    calls: int  # module calls per repl
    what: str  # the operation, for the labels
    js: str  # one call, in the guest (`m` is the module); its result feeds `check`
    goal_s: float | None
    # Native QuickJS's row: the direct call behind `add_callable`, its result as JSON text
    # (`r` once parsed), and the number the guest takes from it.
    native_number: str
    native_result: Callable[[Any], Any]


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _server(stack: ExitStack) -> str:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    stack.callback(httpd.server_close)
    stack.callback(httpd.shutdown)
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def _direct(case: ModuleCase, tree: Path, stack: ExitStack, origin: str) -> Callable[[Any], Any]:
    """The same operation, done by Python, returning what the guest's call returns."""
    if case.module == "fs":
        path = tree / "1k.txt"

        def read(_: Any) -> Any:
            with open(path, "rb") as f:
                return len(f.read())
        return read
    if case.module == "database":
        conn = sqlite3.connect(tree / "direct.sqlite", isolation_level=None)
        stack.callback(conn.close)
        _fill(conn)

        def query(_: Any) -> Any:
            cur = conn.execute("SELECT a, b, c FROM t")
            names = [d[0] for d in cur.description]
            return len([dict(zip(names, row, strict=True)) for row in cur.fetchall()])
        return query
    if case.module == "exec":
        return lambda _: subprocess.run(["/bin/true"], check=False).returncode
    client = httpx.Client(trust_env=False, limits=httpx.Limits(max_keepalive_connections=0))
    stack.callback(client.close)
    return lambda _: client.get(origin + "/").json()["ok"]


def _fill(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS t (a INTEGER, b TEXT, c REAL)")
    conn.execute("DELETE FROM t")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, f"row {i}", i / 3) for i in range(100)])


def _expect(case: ModuleCase, expected: Any) -> Callable[[Any], None]:
    def check(execution: Any) -> None:
        got = (execution.result or {}).get("json") if execution.status == "ok" else execution.error
        if got != [expected] * case.calls:
            raise CheckFailed(f"{case.name}: the repl gave {str(got)[:200]}")
    return check


def setup_for(case: ModuleCase) -> Callable[[ExitStack, Path, bool], Setup]:
    def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
        tree = directory / "worktree"
        tree.mkdir(parents=True, exist_ok=True)
        (tree / "1k.txt").write_bytes(b"x" * 1024)
        origin = _server(stack) if case.module == "fetch" else ""
        sup = open_supervisor(stack, directory)
        template = sup.templates.create(f"bench-{case.name}")
        sup.templates.add_module(template.id, case.module)
        config = json.loads(json.dumps(case.config).replace("ORIGIN", origin))
        if config:
            sup.templates.add_capability(template.id, case.module, case.module, config=config)
        sid = sup.create_session(template.id, WORKSPACE, BASE_COMMIT, str(tree)).id
        if case.module == "database":
            sup.repl(sid, "const d = require('database');"
                          "d.exec('CREATE TABLE t (a INTEGER, b TEXT, c REAL)');"
                          "for (let i = 0; i < 100; i++)"
                          "  d.exec('INSERT INTO t VALUES (?, ?, ?)', i, 'row ' + i, i / 3)")
        busy = BusyCounter()
        direct = _direct(case, tree, stack, origin)
        expected = direct(None)
        js = case.js.replace("ORIGIN", json.dumps(origin))
        code = (f"(async () => {{ const m = require('{case.module}'); const out = [];"
                f" for (let i = 0; i < {case.calls}; i++) out.push(await ({js})); return out; }})()")
        calls_label = f"vm-system: {case.what} ×{case.calls} in one repl"
        native = NativeQuickJS()
        found = native.availability()
        loop = (f"{{ let s = 0; for (let i = 0; i < {case.calls}; i++) {{ const r = JSON.parse(host.op());"
                f" s += {case.native_number}; }} s }}")
        workload = Workload(case.name, case.what, loop, case.calls * _number(expected), Plan(1, 1),
                            units=case.calls, unit="call",
                            host=(HostCallable("op", lambda: json.dumps(case.native_result(direct(None)))),))
        rows = [
            Measured(NATIVE, f"{NATIVE}: the same call behind add_callable, its result as JSON, ×{case.calls}",
                     native.sampler(workload, stack) if found.present else None, found.note,
                     baseline=True, version=found.version),
            Measured(VM, calls_label, Sampler(lambda _: repl_retrying(sup, sid, code, busy),
                                              check=_expect(case, expected), units=case.calls)),
            Measured(VM, TRIVIAL_REPL, Sampler(lambda _: repl_retrying(sup, sid, "1+1", busy))),
            Measured(PYTHON, f"{PYTHON}: {case.what}",
                     Sampler(direct, check=lambda got: _same(got, expected), inner=case.calls)),
        ]

        def details(stats: Mapping[str, Stats]) -> dict[str, Any]:
            per_call = ((stats[calls_label].median * case.calls - stats[TRIVIAL_REPL].median)
                        / case.calls)
            return {"module": case.module, "per_call_s": per_call,
                    "overhead_s": per_call - stats[f"{PYTHON}: {case.what}"].median,
                    "goal_s": case.goal_s}

        return Setup(rows, details=details)
    return setup


def _number(value: Any) -> int:
    return int(value)  # True (a fetch's ok) counts as 1


def _same(got: Any, expected: Any) -> None:
    if got != expected:
        raise CheckFailed(f"the direct call gave {got!r}, expected {expected!r}")


def notes(d: Mapping[str, Any]) -> list[str]:
    goal = d.get("goal_s")
    verdict = "" if goal is None else (
        f" (goal ≤ {format_seconds(goal)}: {'met' if d['overhead_s'] <= goal else 'not met'})")
    return [f"{d['module']}: a call costs {format_seconds(d['per_call_s'])} in a session, "
            f"{format_seconds(d['overhead_s'])} more than the direct call{verdict}"]


def module_scenario(case: ModuleCase) -> Scenario:
    return Scenario(case.name, "pipeline", f"a {case.module} module call from a session's repl, "
                    "against Python doing the same", "call", setup_for(case),
                    Plan(quick_runs=7, full_runs=31, quick_warmup=1, full_warmup=3), notes=notes)


FS = ModuleCase("module-fs", "fs", {}, 100, "readFileSync of 1 KB",
                "m.readFileSync('1k.txt').length", 20e-6, "r.length", lambda n: "x" * n)
DATABASE = ModuleCase("module-database", "database", {}, 20, "a query of 100 rows × 3 columns",
                      "m.query('SELECT a, b, c FROM t').length", 20e-6, "r.length",
                      lambda n: [{"a": i, "b": f"row {i}", "c": i / 3} for i in range(n)])
EXEC = ModuleCase("module-exec", "exec", {"allow": ["true"]}, 5, "exec.run of /bin/true",
                  "(m.run('true', []), 0)", 2e-3, "r.code", lambda code: {"code": code, "output": ""})
FETCH = ModuleCase("module-fetch", "fetch", {"origins": ["ORIGIN"]}, 10,
                   "a GET of a local server (a new connection each)",
                   "m.fetch(ORIGIN + '/').then((r) => r.json()).then((j) => j.ok)", None,
                   "(r.ok ? 1 : 0)", lambda ok: {"ok": ok})
