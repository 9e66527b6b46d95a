"""1,000 `await new Promise(r => setTimeout(r, 0))` one after another in one evaluation: what
one turn of the event loop costs (vm-system: the host fires the due timer between turns and
drains the jobs). Native QuickJS has no timers: its row is the nearest equivalent, a queue in
the context that Python fires a callback a turn from, labelled so. quickjs-rs has no
setTimeout and is reported absent."""

from __future__ import annotations

from benchmarks.comparison import comparison
from benchmarks.harness import Scenario
from benchmarks.timing import Plan
from benchmarks.workloads import Workload

TURNS = 1_000
# The sum is reached only once every turn has run.
CODE = (f"(async () => {{ let s = 0; for (let i = 0; i < {TURNS}; i++) "
        f"{{ await new Promise(r => setTimeout(r, 0)); s += i + 1 }} return s }})()")
WORKLOAD = Workload("timer-turn", f"{TURNS:,} awaited setTimeout(0) turns", CODE,
                    TURNS * (TURNS + 1) // 2, Plan(3, 21, 1, 2), units=TURNS,
                    unit="timer turn", settles=True, timers=True)


def scenario() -> Scenario:
    return comparison(WORKLOAD, name=WORKLOAD.name)
