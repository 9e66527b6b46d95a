"""A new sandbox ready to evaluate: `Sandbox(limits)` (a fresh instance restored from the
pristine image) and `sb.clone()` of a live sandbox, against a new context of each alternative
engine. The first evaluation (`1+1`, checked) and closing are outside the timed part."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.checks import outcome_expects
from benchmarks.comparison import engine_rows
from benchmarks.engines import LIMITS, VM, alternatives
from benchmarks.harness import Measured, Scenario, Setup
from benchmarks.timing import Plan, Sampler
from sandbox import Sandbox


def _close_all(made: list[Sandbox]) -> None:
    for sb in made:
        sb.close()
    made.clear()


def _keeping(make: Any) -> Sampler[Any]:
    made: list[Sandbox] = []

    def call(holder: list[Sandbox]) -> Sandbox:
        sb = make()
        holder.append(sb)
        return sb

    ready = outcome_expects(2)
    return Sampler(call, before=lambda: made, after=_close_all,
                   check=lambda sb: ready(sb.eval("1+1")))


def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
    base = Sandbox(limits=LIMITS)  # fresh: its checkpoint is the initial image
    stack.callback(base.close)
    rows = [Measured(VM, "vm-system: Sandbox(limits), fresh", _keeping(lambda: Sandbox(limits=LIMITS))),
            Measured(VM, "vm-system: sb.clone() of a fresh sandbox", _keeping(base.clone))]
    rows += engine_rows(alternatives(), lambda e: f"{e.name}: a new context",
                        lambda e: e.new_context_sampler(stack))
    return Setup(rows)


def scenario() -> Scenario:
    return Scenario("sandbox-spawn", "sandbox", "a new sandbox (fresh, or cloned from a live "
                    "one) ready to evaluate", "sandbox", setup, Plan(20, 300, 3, 20))
