"""A trivial expression, `1+1`: what one evaluation costs when the script itself costs nothing.
Evaluated in batches (one call lasts microseconds); vm-system also with a checkpoint after every
evaluation (what the supervisor's sessions take), the largest single cost of a trivial one."""

from __future__ import annotations

from benchmarks.comparison import comparison
from benchmarks.engines import VmSystemEngine, alternatives
from benchmarks.harness import Scenario
from benchmarks.timing import Plan
from benchmarks.workloads import Workload

WORKLOAD = Workload("trivial", "eval('1+1')", "1+1", 2, Plan(30, 500, 5, 50), batch=20)


def scenario() -> Scenario:
    engines = [VmSystemEngine(),
               VmSystemEngine(auto_checkpoint=True, name="vm-system, checkpoint after every eval"),
               *alternatives()]
    return comparison(WORKLOAD, engines)
