"""The threads scenario with executions that do real work in the guest (~1.3 ms of JavaScript
each, then the same console line and value as `pipeline-threads`): where the time is in the
guest, which runs without the GIL, threads and worker processes can use more than one core."""

from __future__ import annotations

from benchmarks.harness import Scenario
from benchmarks.scenarios.pipeline_threads import scenario as threads_scenario


def compute_code(i: int) -> str:
    return ("(() => { let s = 0; for (let k = 0; k < 30000; k++) s += k; "
            f"console.log({i}); return {i} }})()")


def scenario() -> Scenario:
    return threads_scenario(quick_per_session=20, full_per_session=200, code=compute_code,
                            name="pipeline-threads-compute",
                            what="executions of ~1.3 ms of JavaScript", expected=compute_code)
