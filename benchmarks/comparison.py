"""A workload run by vm-system and by every alternative engine: one scenario of the `engine`
layer, with native QuickJS as the baseline of its ratios."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.engines import NATIVE, Engine, all_engines
from benchmarks.harness import Measured, Scenario, Setup
from benchmarks.timing import Sampler
from benchmarks.workloads import Workload


def failing_sampler(exc: BaseException) -> Sampler[Any]:
    """A row whose set-up failed: it fails again at its first (untimed) call, so the harness
    reports it like any failing engine."""

    def fail(_: Any) -> Any:
        raise exc

    return Sampler(fail)


def engine_rows(workload: Workload, engines: Sequence[Engine], stack: ExitStack) -> list[Measured]:
    rows = []
    for engine in engines:
        found = engine.availability()
        label = f"{engine.name}: {workload.description}"
        if not found.present:
            rows.append(Measured(engine.name, label, None, found.note, engine.name == NATIVE))
            continue
        try:
            sampler = engine.sampler(workload, stack)
        except Exception as exc:  # noqa: BLE001 - reported as this engine's failure
            sampler = failing_sampler(exc)
        rows.append(Measured(engine.name, label, sampler, found.note, engine.name == NATIVE,
                             found.version))
    return rows


def comparison(workload: Workload, engines: Sequence[Engine] | None = None) -> Scenario:
    """The scenario `eval-<workload>`: `engines` (default: vm-system and every alternative)."""

    def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
        return Setup(engine_rows(workload, engines if engines is not None else all_engines(),
                                 stack))

    return Scenario(f"eval-{workload.name}", "engine", workload.description, workload.unit,
                    setup, workload.plan)
