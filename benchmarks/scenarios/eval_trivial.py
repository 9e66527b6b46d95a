"""A trivial expression, `1+1`: what one evaluation costs when the script itself costs nothing.
Evaluated in batches of 100 (one call lasts microseconds; with batches of 20 the first calls
after another engine's sample, cold in the caches, were a fifth of each sample and made the
median swing by 30%); vm-system also with a checkpoint after every
evaluation (what the supervisor's sessions take), the largest single cost of a trivial one."""

from __future__ import annotations

from benchmarks.comparison import comparison
from benchmarks.engines import VmSystemEngine, alternatives
from benchmarks.harness import Scenario
from benchmarks.timing import Plan
from benchmarks.workloads import Workload

WORKLOAD = Workload("trivial", "eval('1+1')", "1+1", 2, Plan(20, 200, 5, 50), batch=100)


def scenario() -> Scenario:
    engines = [VmSystemEngine(),
               VmSystemEngine(auto_checkpoint=True, name="vm-system, checkpoint after every eval"),
               *alternatives()]
    return comparison(WORKLOAD, engines)
