"""String building: 50,000 pieces appended with `+=`, then measured. (Native QuickJS 2021, the
PyPI `quickjs` build, copies the whole string on every `+=`: quadratic, so more pieces would
only measure that.)"""

from __future__ import annotations

from benchmarks.comparison import comparison
from benchmarks.harness import Scenario
from benchmarks.timing import Plan
from benchmarks.workloads import Workload

PIECES = 50_000
CODE = (f"{{ let s = ''; for (let i = 0; i < {PIECES}; i++) s += 'item' + i + ';'; "
        "s.length + ':' + s.slice(-12) }")
LENGTH = sum(len(f"item{i};") for i in range(PIECES))
EXPECTED = f"{LENGTH}:{f'item{PIECES - 2};item{PIECES - 1};'[-12:]}"
WORKLOAD = Workload("string-build", f"build a string of {PIECES:,} pieces with +=", CODE,
                    EXPECTED, Plan(3, 21, 1, 2))


def scenario() -> Scenario:
    return comparison(WORKLOAD)
