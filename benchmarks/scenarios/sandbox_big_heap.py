"""A small evaluation in a sandbox holding a big heap (~50 MiB of objects): what the checkpoint
after each evaluation costs once the heap is big. With page tracking (Linux 6.7+, see
docs/engine.md) a checkpoint copies only the pages the evaluation wrote; a whole copy of the
same memory (what every checkpoint cost before) and the evaluation without any checkpoint are
measured beside it."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.checks import outcome_expects
from benchmarks.engines import VM
from benchmarks.harness import Measured, Scenario, Setup
from benchmarks.timing import CheckFailed, Plan, Sampler
from sandbox import Limits, Sandbox, dirty_pages

HEAP = ("globalThis.big = []; for (let i = 0; i < 400000; i++) big.push({i, s: 'x' + i});"
        "var counter = 0")
STEP = "counter++; big[counter % big.length].i"


def _sandbox(stack: ExitStack, auto_checkpoint: bool) -> Sandbox:
    sb = Sandbox(limits=Limits(cpu_ms=10_000, wall_ms=20_000, mem_mb=256),
                 auto_checkpoint=auto_checkpoint)
    stack.callback(sb.close)
    out = sb.eval(HEAP)
    if out.status != "ok":
        raise CheckFailed(f"building the heap ended {out.status}: {out.error}")
    return sb


def _stepping(sb: Sandbox) -> Sampler[Any]:
    # Each step returns the element's `i`, which is the index it read.
    def step(_: Any) -> Any:
        return sb.eval(STEP)

    def check(out: Any) -> None:
        counter = sb.eval("counter").value
        index = (counter or {}).get("json", 0) % 400000
        outcome_expects(index)(out)

    return Sampler(step, check=check)


def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
    tracked = _sandbox(stack, auto_checkpoint=True)
    plain = _sandbox(stack, auto_checkpoint=False)
    megabytes = tracked.memory_size() / 1048576
    how = "pages written" if dirty_pages() is not None else "whole copy: no page tracking here"

    # What a checkpoint cost before page tracking: the kept memory copied whole into a buffer
    # kept for the purpose (the engine's own capture, as a whole checkpoint runs it).
    buffer = bytearray(tracked._instance.capture_size())

    def whole_copy(_: Any) -> int:
        return len(tracked._instance.capture(into=buffer).data)

    def copied(size: Any) -> None:
        if size < 10 * 1048576:
            raise CheckFailed(f"the heap is only {size} bytes")

    return Setup([
        Measured(VM, f"vm-system: eval + checkpoint ({how}), {megabytes:.0f} MiB memory",
                 _stepping(tracked)),
        Measured(VM, "vm-system: eval, auto_checkpoint=False", _stepping(plain)),
        Measured(VM, "vm-system: a whole checkpoint copy of that memory, no evaluation",
                 Sampler(whole_copy, check=copied)),
    ], details=lambda stats: {"memory_bytes": tracked.memory_size(),
                              "page_tracking": dirty_pages() is not None})


def scenario() -> Scenario:
    return Scenario("sandbox-big-heap", "sandbox", "a small evaluation in a sandbox holding "
                    "~50 MiB of objects, checkpointed after it", "evaluation", setup,
                    Plan(10, 100, 2, 10))
