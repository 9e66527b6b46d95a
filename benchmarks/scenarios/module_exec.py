"""`exec.run` of /bin/true from a session, against `subprocess.run`."""

from __future__ import annotations

from benchmarks.harness import Scenario
from benchmarks.module_calls import EXEC, module_scenario


def scenario() -> Scenario:
    return module_scenario(EXEC)
