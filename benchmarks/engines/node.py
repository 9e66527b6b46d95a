"""Node.js as a subprocess, when `node` is on the PATH.

One Node process serves a whole sampler: it is started (and its start-up paid) before anything
is timed, and it times its own calls with `process.hrtime`, so neither its start-up nor the
pipe is in a figure (the process-run scenario measures a whole `node -e` apart). Code runs in a
`vm` context with a console that collects lines formatted by `util.format`, as vm-system's
console formats them. Loading code into a fresh context gets a source V8 has not seen (a
numbered comment appended): otherwise V8's compilation cache would skip the parsing every other
engine pays.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from contextlib import ExitStack
from typing import Any

from benchmarks.engines.base import TRIVIAL, Availability, Engine
from benchmarks.timing import CheckFailed, Sampler, SelfTimedSampler
from benchmarks.workloads import Answer, Workload, verify

NAME = "Node.js"
TIMEOUT_S = 120.0  # for one answer of the driver: past it, node is killed and the row fails

# Requests and answers are JSON lines on stdin/stdout.
DRIVER = r"""
'use strict';
const vm = require('vm');
const util = require('util');
const readline = require('readline');

const contexts = new Map();
let nextId = 1;
let fresh = 0;

function newContext(prelude) {
  const lines = [];
  const ctx = vm.createContext({console: {log: (...a) => { lines.push(util.format(...a)); }}});
  if (prelude) vm.runInContext(prelude, ctx);
  return {ctx, lines};
}

function json(value) {
  return value === undefined ? null : JSON.parse(JSON.stringify(value));
}

function run(req) {
  const c = req.fresh ? newContext(req.prelude) : contexts.get(req.ctx);
  const code = req.fresh ? `${req.code}\n//${++fresh}` : req.code;
  let value;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < req.inner; i++) value = vm.runInContext(code, c.ctx);
  const ns = Number(process.hrtime.bigint() - t0);
  const out = {ns, value: json(value), console: c.lines.splice(0)};
  if (req.after) out.after = json(vm.runInContext(req.after, c.ctx));
  return out;
}

function newContexts(req) {
  let ok = true;
  const t0 = process.hrtime.bigint();
  const made = [];
  for (let i = 0; i < req.inner; i++) made.push(vm.createContext({}));
  const ns = Number(process.hrtime.bigint() - t0);
  for (const ctx of made) ok = ok && vm.runInContext('1+1', ctx) === 2;
  return {ns, value: ok ? 2 : null, console: []};
}

function handle(req) {
  switch (req.op) {
    case 'open': { const id = nextId++; contexts.set(id, newContext(req.prelude)); return {ctx: id}; }
    case 'close': contexts.delete(req.ctx); return {};
    case 'run': return run(req);
    case 'new_contexts': return newContexts(req);
    default: throw new Error(`unknown op ${req.op}`);
  }
}

readline.createInterface({input: process.stdin}).on('line', (line) => {
  let out;
  try { out = {ok: true, ...handle(JSON.parse(line))}; }
  catch (e) { out = {ok: false, error: `${e && e.name}: ${e && e.message}`}; }
  process.stdout.write(JSON.stringify(out) + '\n');
});
"""


class NodeError(RuntimeError):
    """The driver could not do what was asked (not a wrong answer: an engine failure)."""


class NodeProcess:
    """One `node` running the driver. A request unanswered after `timeout_s` kills it: the
    row fails, the benchmark goes on."""

    def __init__(self, node: str, timeout_s: float = TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.proc = subprocess.Popen([node, "-e", DRIVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     encoding="utf-8")

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        fired = threading.Event()

        def give_up() -> None:
            fired.set()
            self.proc.kill()

        watchdog = threading.Timer(self.timeout_s, give_up)
        watchdog.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            watchdog.cancel()
        if not line:
            if fired.is_set():
                raise NodeError(f"node gave no answer within {self.timeout_s:g} s (killed)")
            raise NodeError(f"node exited ({self.proc.poll()}): {self._stderr()}")
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise NodeError(answer.get("error", "failed"))
        return answer

    def _stderr(self) -> str:
        try:
            _, err = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            return ""
        return (err or "").strip()[-300:]

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def node_path() -> str | None:
    return shutil.which("node")


def node_version(node: str) -> str | None:
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip().lstrip("v") or None


class NodeJs(Engine):
    name = NAME

    def availability(self) -> Availability:
        node = node_path()
        if node is None:
            return Availability(False, None, "`node` is not on the PATH")
        version = node_version(node)
        if version is None:
            return Availability(False, None, f"{node} --version failed")
        return Availability(True, version, "timed inside one node process (start-up excluded)")

    def runs(self, workload: Workload) -> Availability:
        found = self.availability()
        if found.present and workload.needs_host:
            return Availability(False, found.version,
                                "host functions are Python callables, and Node.js runs in "
                                "another process (a call would be a pipe round trip): not "
                                "measured")
        return found

    def _start(self, stack: ExitStack) -> NodeProcess:
        node = node_path()
        if node is None:
            raise NodeError("`node` is not on the PATH")
        process = NodeProcess(node)
        stack.callback(process.close)
        return process

    def sampler(self, workload: Workload, stack: ExitStack) -> Sampler[Any]:
        node = self._start(stack)
        request: dict[str, Any] = {"op": "run", "code": workload.code, "inner": workload.batch,
                                   "after": workload.after}
        if workload.fresh_context:
            request.update(fresh=True, prelude=workload.prelude)
        else:
            request["ctx"] = node.ask({"op": "open", "prelude": workload.prelude})["ctx"]

        def call(_: Any) -> tuple[float, Answer]:
            got = node.ask(request)
            return got["ns"] / 1e9, Answer(got["value"], got["console"], got.get("after"))

        return SelfTimedSampler(call, check=lambda answer: verify(workload, answer),
                                inner=workload.batch, units=workload.units)

    def new_context_sampler(self, stack: ExitStack) -> Sampler[Any]:
        node = self._start(stack)

        def call(_: Any) -> tuple[float, Any]:
            got = node.ask({"op": "new_contexts", "inner": 1})
            return got["ns"] / 1e9, got["value"]

        def check(value: Any) -> None:
            if value != 2:
                raise CheckFailed(f"a new vm context evaluates {TRIVIAL} to {value!r}")

        return SelfTimedSampler(call, check=check)
