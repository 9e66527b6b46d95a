"""What a scenario is, what it yields, and how one is run.

A scenario sets up its samplers (one per engine or variant: a `Measured`), each checked during
its warm-up before anything is timed; then their samples are taken in turn. An engine that is
not installed is a `Measured` without a sampler and is reported absent. An engine that answers
wrongly, or fails, is reported as such and never timed; the others still are, and the scenario
counts as failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from benchmarks.timing import CheckFailed, Plan, SampleError, Sampler, Stats, interleave

FigureStatus = Literal["ok", "absent", "wrong_result", "error"]
ScenarioStatus = Literal["ok", "wrong_result", "error"]


@dataclass
class Measured:
    """One row of a scenario: an engine, or a variant, and how to sample it."""

    engine: str  # who runs the code: "vm-system", "native QuickJS", "Node.js", ...
    label: str  # what exactly is timed
    sampler: Sampler[Any] | None  # None: the engine is absent
    note: str | None = None  # why it is absent, or how it was measured
    baseline: bool = False  # the figure the scenario's ratios are taken against
    version: str | None = None


@dataclass
class Setup:
    measured: list[Measured]
    # Figures computed after timing, from the stats of the rows that were timed (by label).
    details: Callable[[Mapping[str, Stats]], dict[str, Any]] | None = None
    # Problems found once everything the set-up opened is closed (a daemon's exit status).
    shutdown_problems: Callable[[], list[str]] | None = None


# Builds a scenario's rows in its own directory; what it opens goes on the ExitStack.
SetupFactory = Callable[[ExitStack, Path, bool], Setup]


@dataclass(frozen=True)
class Scenario:
    name: str
    layer: str  # "engine", "sandbox", "pipeline", "http", "process", "store"
    description: str
    unit: str  # what one measured unit is: "evaluation", "session", "request", ...
    setup: SetupFactory
    plan: Plan
    throughput: bool = False  # shown as units per second rather than seconds per unit
    # Lines under the table, from the details.
    notes: Callable[[Mapping[str, Any]], list[str]] | None = None


@dataclass
class Figure:
    engine: str
    label: str
    status: FigureStatus
    stats: Stats | None = None
    note: str | None = None
    error: str | None = None
    baseline: bool = False
    ratio: float | None = None  # median / the baseline's median
    version: str | None = None

    def to_dict(self, throughput: bool) -> dict[str, Any]:
        s = self.stats
        data: dict[str, Any] = {
            "engine": self.engine, "label": self.label, "status": self.status,
            "version": self.version, "note": self.note, "error": self.error,
            "baseline": self.baseline, "ratio": self.ratio, "n": s.n if s else 0,
            **{f"{k}_s": (getattr(s, k) if s else None)
               for k in ("median", "p10", "p90", "mean", "min", "max")},
        }
        if throughput and s is not None:
            data["per_second_median"] = 1 / s.median
            data["per_second_p10"] = 1 / s.p90  # the slowest 10% of samples
            data["per_second_p90"] = 1 / s.p10
        return data


@dataclass
class ScenarioResult:
    scenario: str
    layer: str
    description: str
    unit: str
    status: ScenarioStatus
    figures: list[Figure]
    runs: int
    warmup: int
    throughput: bool = False
    error: str | None = None  # the scenario could not be set up (no figure then)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def figure(self, engine: str) -> Figure | None:
        return next((f for f in self.figures if f.engine == engine), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "layer": self.layer, "description": self.description,
            "unit": self.unit, "status": self.status, "error": self.error, "runs": self.runs,
            "warmup": self.warmup, "throughput": self.throughput,
            "figures": [f.to_dict(self.throughput) for f in self.figures],
            "details": self.details, "notes": self.notes,
        }


def _failure_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"


def _failed_status(exc: BaseException) -> FigureStatus:
    return "wrong_result" if isinstance(exc, CheckFailed) else "error"


def run_scenario(scenario: Scenario, *, quick: bool, directory: Path,
                 on_round: Callable[[], None] | None = None,
                 max_runs: int | None = None) -> ScenarioResult:
    """Set up, check every row's answer while warming it up, then time the rows that passed.

    `max_runs` caps the samples per row (the test suite runs every scenario's quick mode with
    a couple of samples: it checks the harness, not the speed)."""
    runs, warmup = scenario.plan.runs(quick), scenario.plan.warmup(quick)
    if max_runs is not None:
        runs, warmup = min(runs, max_runs), min(warmup, max_runs)
    result = ScenarioResult(scenario.name, scenario.layer, scenario.description, scenario.unit,
                            "ok", [], runs, warmup, scenario.throughput)
    opened: list[Setup] = []
    with ExitStack() as stack:
        try:
            setup = scenario.setup(stack, directory, quick)
        except Exception as exc:  # reported as this scenario's failure
            result.status, result.error = _failed_status(exc), _failure_text(exc)  # type: ignore[assignment]
            return result
        opened.append(setup)
        _measure(setup, result, runs, warmup, on_round)
    for problem in (setup.shutdown_problems() if setup.shutdown_problems else []):
        result.notes.append(problem)
        if result.status == "ok":
            result.status, result.error = "error", problem
    if scenario.notes is not None and result.details:
        result.notes[:0] = scenario.notes(result.details)
    return result


def _measure(setup: Setup, result: ScenarioResult, runs: int, warmup: int,
             on_round: Callable[[], None] | None) -> None:
    figures = [Figure(m.engine, m.label, "ok" if m.sampler else "absent", note=m.note,
                      baseline=m.baseline, version=m.version) for m in setup.measured]
    result.figures = figures
    live: list[int] = []
    for index, m in enumerate(setup.measured):
        if m.sampler is None:
            continue
        try:
            # Each row warms up on its own (not inside `interleave`): a failure names its row.
            m.sampler.warm_up(max(warmup, 1))
        except Exception as exc:  # this row's failure, the others go on
            figures[index].status, figures[index].error = _failed_status(exc), _failure_text(exc)
            continue
        live.append(index)
    while live:
        try:
            stats = interleave([setup.measured[i].sampler for i in live],  # type: ignore[misc]
                               runs=runs, warmup=0, on_round=on_round)
        except SampleError as exc:
            # A wrong answer while timing discards that row's figures; the rest are sampled
            # again (they are warm already).
            failed = live.pop(exc.index)
            figures[failed].status = _failed_status(exc.cause)
            figures[failed].error = _failure_text(exc.cause)
            continue
        for index, s in zip(live, stats, strict=True):
            figures[index].stats = s
        break
    failures = [f for f in figures if f.status in ("wrong_result", "error")]
    if failures:
        result.status = "wrong_result" if any(f.status == "wrong_result" for f in failures) \
            else "error"
        result.error = "; ".join(f"{f.label}: {f.error}" for f in failures)
    _ratios(figures)
    if setup.details is not None and not failures:
        try:
            result.details = setup.details({f.label: f.stats for f in figures if f.stats})
        except Exception as exc:  # the figures stand; the details failed
            result.status, result.error = "error", f"details: {_failure_text(exc)}"


def _ratios(figures: list[Figure]) -> None:
    base = next((f for f in figures if f.baseline and f.stats is not None), None)
    if base is None or base.stats is None or base.stats.median <= 0:
        return
    for f in figures:
        if f.stats is not None:
            f.ratio = f.stats.median / base.stats.median
