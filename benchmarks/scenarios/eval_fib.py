"""Recursive fib(25): function calls, 242,785 of them."""

from __future__ import annotations

from benchmarks.comparison import comparison
from benchmarks.harness import Scenario
from benchmarks.timing import Plan
from benchmarks.workloads import Workload

CODE = "{ const fib = (n) => n < 2 ? n : fib(n - 1) + fib(n - 2); fib(25) }"
WORKLOAD = Workload("fib-25", "recursive fib(25)", CODE, 75025, Plan(5, 41, 1, 3))


def scenario() -> Scenario:
    return comparison(WORKLOAD)
