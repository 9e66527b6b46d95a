"""10,000 console lines in one evaluation: the cost per line of getting output out of the
engine (vm-system: a host function and an event each; the others: a callback or an array)."""

from __future__ import annotations

from benchmarks.comparison import comparison
from benchmarks.harness import Scenario
from benchmarks.timing import Plan
from benchmarks.workloads import Workload

LINES = 10_000
CODE = f"{{ for (let i = 0; i < {LINES}; i++) console.log('line', i); {LINES} }}"
WORKLOAD = Workload("console-10k", f"{LINES:,} console.log lines", CODE, LINES,
                    Plan(3, 25, 1, 2), console=tuple(f"line {i}" for i in range(LINES)),
                    units=LINES, unit="console line")


def scenario() -> Scenario:
    return comparison(WORKLOAD)
