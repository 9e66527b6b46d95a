"""quickjs-rs (PyPI `quickjs-rs`): QuickJS-NG through rquickjs, compiled to wasm and hosted by
wasmtime, like vm-system. Its console is a registered Python function, and so are host
functions (sync ones, and async ones driven by `eval_async` on an asyncio loop). It has no
timers: a workload that needs setTimeout is reported absent."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from typing import Any

from benchmarks.engines.base import Availability, Driver, DriverEngine, EvalDriver
from benchmarks.workloads import Workload, console_shim, host_shim

# The same memory as vm-system's limits (benchmarks.engines.vm.LIMITS).
MEMORY_LIMIT = 128 * 1024 * 1024
# A hang guard, not a limit under test: its console costs ~140 µs a line (a Python call), so
# the 10,000-line workload takes ~1.5 s on a quiet machine and several times that on a busy one.
TIMEOUT_S = 30.0
NO_TIMERS = "no timers: quickjs-rs has no setTimeout (its eval_async drives host calls only)"


class _Context:
    def __init__(self, runtime: Any, workload: Workload | None) -> None:
        self.js = runtime.new_context(timeout=TIMEOUT_S)
        self.lines: list[str] = []
        self.js.register("__log", self.lines.append, is_async=False)
        self.js.eval(console_shim("__log"))
        if workload is not None and workload.host:
            for h in workload.host:
                self.js.register(f"__host_{h.name}", h.offered(), is_async=h.is_async)
            self.js.eval(host_shim(workload.host))


class _QuickJsRsDriver(EvalDriver):
    def __init__(self, stack: ExitStack) -> None:
        from quickjs_rs import Runtime

        self.runtime = Runtime(memory_limit=MEMORY_LIMIT)
        stack.callback(self.runtime.close)
        # One loop for the driver's life, as a host serving many evaluations keeps one: a
        # loop made per evaluation (asyncio.run) would be timed too.
        self.loop = asyncio.new_event_loop()
        stack.callback(self.loop.close)

    def open(self, workload: Workload | None = None) -> _Context:
        return _Context(self.runtime, workload)

    def settle(self, ctx: _Context, code: str) -> Any:
        # Script-mode eval_async answers the last expression's value, awaited here.
        return self.loop.run_until_complete(ctx.js.eval_async(f"await ({code})"))

    def close(self, ctx: _Context) -> None:
        ctx.js.close()


class QuickJsRs(DriverEngine):
    name = "quickjs-rs"
    distribution = "quickjs-rs"
    module = "quickjs_rs"
    absent_note = "PyPI `quickjs-rs` is not installed (pip install 'vm-system[bench]')"

    def runs(self, workload: Workload) -> Availability:
        found = self.availability()
        if found.present and workload.timers:
            return Availability(False, found.version, NO_TIMERS)
        return found

    def driver(self, stack: ExitStack) -> Driver:
        return _QuickJsRsDriver(stack)
