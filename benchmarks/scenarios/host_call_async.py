"""1,000 async host calls awaited one after another in one evaluation, `await
host.addAsync(i, 1)`: what a round trip costs from the guest through a Promise, the host's
asyncio loop and back into the guest (vm-system: the sandbox's own loop, between turns;
quickjs-rs: `eval_async` on a loop of the driver's). Native QuickJS has no async host
functions: its row is the nearest equivalent, the sync callable's result resolved in a Promise,
and is labelled so. Issue 13's goal: ≤ 50 µs a round trip in vm-system."""

from __future__ import annotations

from benchmarks.comparison import comparison
from benchmarks.harness import Scenario
from benchmarks.scenarios.host_call_sync import CALLS, add
from benchmarks.timing import Plan
from benchmarks.workloads import HostCallable, Workload

# An expression whose value is a Promise (`settles`): every engine runs it to completion.
CODE = (f"(async () => {{ let s = 0; for (let i = 0; i < {CALLS}; i++) "
        f"s += await host.addAsync(i, 1); return s }})()")
WORKLOAD = Workload("host-call-async", f"{CALLS:,} awaited async host calls host.addAsync(i, 1)",
                    CODE, CALLS * (CALLS + 1) // 2, Plan(3, 21, 1, 2), units=CALLS,
                    unit="host call", host=(HostCallable("addAsync", add, is_async=True),),
                    settles=True)


def scenario() -> Scenario:
    return comparison(WORKLOAD, name=WORKLOAD.name)
