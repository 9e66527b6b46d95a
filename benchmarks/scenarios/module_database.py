"""A `query` of 100 rows from a session's database, against sqlite3 and dict building."""

from __future__ import annotations

from benchmarks.harness import Scenario
from benchmarks.module_calls import DATABASE, module_scenario


def scenario() -> Scenario:
    return module_scenario(DATABASE)
