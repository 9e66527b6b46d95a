"""`readFileSync` of a 1 KB file from a session, against `open(...).read()`."""

from __future__ import annotations

from benchmarks.harness import Scenario
from benchmarks.module_calls import FS, module_scenario


def scenario() -> Scenario:
    return module_scenario(FS)
