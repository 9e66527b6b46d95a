"""A workload run by vm-system and by every alternative engine: one scenario of the `engine`
layer, with native QuickJS as the baseline of its ratios."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.engines import NATIVE, Availability, Engine, all_engines
from benchmarks.harness import Measured, Scenario, Setup
from benchmarks.timing import Sampler
from benchmarks.workloads import Workload


def failing_sampler(exc: BaseException) -> Sampler[Any]:
    """A row whose set-up failed: it fails again at its first (untimed) call, so the harness
    reports it like any failing engine."""

    def fail(_: Any) -> Any:
        raise exc

    return Sampler(fail)


def engine_rows(engines: Sequence[Engine], label: Callable[[Engine], str],
                sampler: Callable[[Engine], Sampler[Any]],
                found_by: Callable[[Engine], Availability] | None = None,
                ) -> list[Measured]:
    """One row per engine: absent ones with their note (`found_by` says whether the engine is
    there, for what is measured), native QuickJS as the baseline, and an engine whose sampler
    cannot even be made reported as failing."""
    rows = []
    for engine in engines:
        found = found_by(engine) if found_by is not None else engine.availability()
        if not found.present:
            rows.append(Measured(engine.name, label(engine), None, found.note, engine.name == NATIVE))
            continue
        try:
            made = sampler(engine)
        except Exception as exc:  # reported as this engine's failure
            made = failing_sampler(exc)
        rows.append(Measured(engine.name, label(engine), made, found.note, engine.name == NATIVE,
                             found.version))
    return rows


def comparison(workload: Workload, engines: Sequence[Engine] | None = None,
               name: str | None = None) -> Scenario:
    """The scenario `name` (default `eval-<workload>`): `engines` (default: vm-system and every
    alternative)."""

    def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
        def label(engine: Engine) -> str:
            return f"{engine.name}: {engine.runs(workload).equivalent or workload.description}"

        return Setup(engine_rows(engines if engines is not None else all_engines(), label,
                                 lambda e: e.sampler(workload, stack),
                                 lambda e: e.runs(workload)))

    return Scenario(name or f"eval-{workload.name}", "engine", workload.description, workload.unit,
                    setup, workload.plan)
