"""A `fetch` of a local server from a session, against httpx without keep-alive."""

from __future__ import annotations

from benchmarks.harness import Scenario
from benchmarks.module_calls import FETCH, module_scenario


def scenario() -> Scenario:
    return module_scenario(FETCH)
