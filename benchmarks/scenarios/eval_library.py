"""Loading a 70 KiB library (benchmarks.library) into a fresh context: parsing, compiling and
running a vendored library, as a template's session start-up does without an image. The fresh
context is made outside the timed part; what the library defined is checked afterwards."""

from __future__ import annotations

from benchmarks.comparison import comparison
from benchmarks.harness import Scenario
from benchmarks.library import LIBRARY_CHECK, make_library
from benchmarks.timing import Plan
from benchmarks.workloads import Workload


def workload() -> Workload:
    library = make_library()
    size = len(library.source.encode()) / 1024
    # The library's completion value is `undefined` (null in JSON): its effect is checked by
    # `after`.
    return Workload("library-70k", f"load a {size:.0f} KiB library into a fresh context",
                    library.source, None, Plan(5, 60, 1, 5), fresh_context=True,
                    after=LIBRARY_CHECK, after_expected=library.expected_check,
                    unit="library load")


def scenario() -> Scenario:
    return comparison(workload())
