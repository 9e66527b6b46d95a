"""1,000 sync host calls in one evaluation, `host.add(i, 1)` in a loop: what one call from the
guest to a Python function and back costs (vm-system: arguments and result as JSON across the
wasm boundary, a `host_call` event each, the call budget; native QuickJS: `add_callable`;
quickjs-rs: `register`). Issue 13's goal: ≤ 10 µs a call in vm-system."""

from __future__ import annotations

from benchmarks.comparison import comparison
from benchmarks.harness import Scenario
from benchmarks.timing import Plan
from benchmarks.workloads import HostCallable, Workload

# Well inside the default call budget (max_host_calls 10,000) and max_events (50,000).
CALLS = 1_000


def add(a: int, b: int) -> int:
    return a + b


# Each call's result feeds the sum: a call that answered wrongly (or was skipped) fails the
# check.
CODE = f"{{ let s = 0; for (let i = 0; i < {CALLS}; i++) s += host.add(i, 1); s }}"
WORKLOAD = Workload("host-call-sync", f"{CALLS:,} sync host calls host.add(i, 1)", CODE,
                    CALLS * (CALLS + 1) // 2, Plan(3, 21, 1, 2), units=CALLS,
                    unit="host call", host=(HostCallable("add", add),))


def scenario() -> Scenario:
    return comparison(WORKLOAD, name=WORKLOAD.name)
