"""quickjs-rs (PyPI `quickjs-rs`): QuickJS-NG through rquickjs, compiled to wasm and hosted by
wasmtime, like vm-system. Its console is a registered Python function."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from benchmarks.engines.base import Driver, DriverEngine, EvalDriver
from benchmarks.workloads import console_shim

# The same memory as vm-system's limits (benchmarks.engines.vm.LIMITS).
MEMORY_LIMIT = 128 * 1024 * 1024
# A hang guard, not a limit under test: its console costs ~140 µs a line (a Python call), so
# the 10,000-line workload takes ~1.5 s on a quiet machine and several times that on a busy one.
TIMEOUT_S = 30.0


class _Context:
    def __init__(self, runtime: Any) -> None:
        self.js = runtime.new_context(timeout=TIMEOUT_S)
        self.lines: list[str] = []
        self.js.register("__log", self.lines.append, is_async=False)
        self.js.eval(console_shim("__log"))


class _QuickJsRsDriver(EvalDriver):
    def __init__(self, stack: ExitStack) -> None:
        from quickjs_rs import Runtime

        self.runtime = Runtime(memory_limit=MEMORY_LIMIT)
        stack.callback(self.runtime.close)

    def open(self) -> _Context:
        return _Context(self.runtime)

    def close(self, ctx: _Context) -> None:
        ctx.js.close()


class QuickJsRs(DriverEngine):
    name = "quickjs-rs"
    distribution = "quickjs-rs"
    module = "quickjs_rs"
    absent_note = "PyPI `quickjs-rs` is not installed (pip install 'vm-system[bench]')"

    def driver(self, stack: ExitStack) -> Driver:
        return _QuickJsRsDriver(stack)
