"""Every scenario of `vm-system bench`, one per module, in the order they run and are shown:
the workloads on every engine first, then vm-system's layers from the inside out."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from benchmarks.harness import Scenario

MODULES = (
    "eval_trivial", "eval_loop", "eval_fib", "eval_json", "eval_strings", "eval_console",
    "eval_library", "host_call_sync", "host_call_async", "timer_turn",
    "module_fs", "module_database", "module_exec", "module_fetch",
    "sandbox_spawn", "sandbox_big_heap", "pipeline_repl", "pipeline_spawn", "pipeline_spawn_lodash",
    "pipeline_imports", "pipeline_typescript", "pipeline_threads",
    "pipeline_threads_compute",
    "http_repl", "http_throughput", "process_run", "store_writes",
)


def all_scenarios() -> list[Scenario]:
    return [importlib.import_module(f"benchmarks.scenarios.{m}").scenario() for m in MODULES]


def _matches(scenario: Scenario, wanted: str) -> bool:
    # A name, a layer ("http"), or the first part of names ("eval" for every eval-*).
    return wanted in (scenario.name, scenario.layer) or scenario.name.startswith(wanted + "-")


def select(suite: Sequence[Scenario], wanted: Sequence[str] | None) -> list[Scenario]:
    """The scenarios of `suite` that `wanted` names (all when empty); ValueError for a name
    that matches none."""
    if not wanted:
        return list(suite)
    unknown = [w for w in wanted if not any(_matches(s, w) for s in suite)]
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(unknown)} (known: "
                         f"{', '.join(s.name for s in suite)})")
    return [s for s in suite if any(_matches(s, w) for w in wanted)]
