"""A 3M-iteration loop: the engine's own speed (and vm-system's metering) on a tight loop."""

from __future__ import annotations

from benchmarks.comparison import comparison
from benchmarks.harness import Scenario
from benchmarks.timing import Plan
from benchmarks.workloads import Workload

ITERATIONS = 3_000_000
# A block, not top-level `let`s: the same code can run again in the same context.
CODE = f"{{ let s = 0; for (let i = 0; i < {ITERATIONS}; i++) s += i; s }}"
WORKLOAD = Workload("loop-3m", "3M-iteration loop", CODE, ITERATIONS * (ITERATIONS - 1) // 2,
                    Plan(3, 21, 1, 2))


def scenario() -> Scenario:
    return comparison(WORKLOAD)
