"""Timing primitives shared by the benchmarks: warm-up, repeated samples, robust statistics.

Kept free of anything vm-system specific so that every scenario (an engine's evaluation, an
HTTP round trip, a whole process) measures the same way and their figures can be compared.

A *sample* is one timed stretch of `inner` calls of a callable, divided by `inner * units`
(`units`: how many things one call does, e.g. 10,000 console lines). Everything a sample
needs but should not pay for (a fresh context, a subprocess environment) is built by `before`
and released by `after`, both outside the timed stretch. The result of every timed call is
handed to `check` outside the timed stretch as well, so a benchmark never reports a speed for
an engine that computed the wrong thing.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.metadata
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

S = TypeVar("S")


class CheckFailed(Exception):
    """A timed call returned something other than what the scenario expects."""


class SampleError(Exception):
    """Sampler number `index` of an `interleave` failed (its check, or the call itself)."""

    def __init__(self, index: int, cause: BaseException) -> None:
        super().__init__(f"sampler {index}: {cause}")
        self.index = index
        self.cause = cause


@dataclass(frozen=True)
class Stats:
    """Per-unit durations in seconds over `n` samples."""

    n: int
    median: float
    p10: float
    p90: float
    mean: float
    min: float
    max: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th quantile (0..1) of already sorted values, interpolating linearly."""
    if not sorted_values:
        raise ValueError("no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be within [0, 1]")
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(samples: Sequence[float]) -> Stats:
    ordered = sorted(samples)
    return Stats(
        n=len(ordered),
        median=statistics.median(ordered),
        p10=percentile(ordered, 0.10),
        p90=percentile(ordered, 0.90),
        mean=statistics.fmean(ordered),
        min=ordered[0],
        max=ordered[-1],
    )


def _no_state() -> None:
    return None


def _no_cleanup(_state: Any) -> None:
    return None


def _accept(_result: Any) -> None:
    return None


@dataclass
class Sampler(Generic[S]):
    """Takes timed samples of `fn(state)`.

    `before` runs before every sample and its return value is the state `fn` receives;
    `after` releases that state. Neither is timed. `check` receives the last result of each
    sample (and of each warm-up call) and raises CheckFailed if it is wrong.
    """

    fn: Callable[[S], Any]
    before: Callable[[], S] = _no_state  # type: ignore[assignment]
    after: Callable[[S], None] = _no_cleanup
    check: Callable[[Any], None] = _accept
    inner: int = 1
    units: int = 1

    def __post_init__(self) -> None:
        if self.inner < 1 or self.units < 1:
            raise ValueError("inner and units must be at least 1")

    def warm_up(self, calls: int) -> None:
        """Untimed calls that also verify the result: a wrong answer fails before any timing."""
        for _ in range(calls):
            state = self.before()
            try:
                self.check(self.fn(state))
            finally:
                self.after(state)

    def sample(self) -> float:
        """One timed sample: seconds per unit."""
        state = self.before()
        try:
            fn, inner = self.fn, self.inner
            result: Any = None
            # perf_counter_ns: no float rounding on long runs, and the cheapest clock read.
            start = time.perf_counter_ns()
            for _ in range(inner):
                result = fn(state)
            elapsed = time.perf_counter_ns() - start
            # Before `after`: the result may be a resource that `after` releases.
            self.check(result)
        finally:
            self.after(state)
        return elapsed / 1e9 / (inner * self.units)


@dataclass
class CountedSampler(Sampler[S]):
    """A Sampler whose number of units is known only afterwards: `fn(state)` works for as long
    as it decides (a fixed-duration window, say) and `count(result)` says how many units it
    completed. A sample is the elapsed time divided by that count (throughput = 1 / sample).

    `before`, `after` and `check` are as for Sampler, outside the timed stretch; `count` runs
    after `check`, so it may rely on a verified result. `inner` and `units` must stay 1.
    """

    count: Callable[[Any], int] = int

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.inner != 1 or self.units != 1:
            raise ValueError("a CountedSampler counts its units from the result")

    def sample(self) -> float:
        state = self.before()
        try:
            start = time.perf_counter_ns()
            result = self.fn(state)
            elapsed = time.perf_counter_ns() - start
            self.check(result)
            completed = self.count(result)
        finally:
            self.after(state)
        if completed < 1:
            raise CheckFailed("the sample completed no unit")
        return elapsed / 1e9 / completed


@dataclass
class SelfTimedSampler(Sampler[S]):
    """A Sampler for an engine that times itself, in another process (Node.js): `fn(state)`
    makes all `inner` calls there and returns `(seconds, result)`, the seconds measured by
    the engine around its calls only. What it costs to ask (a pipe round trip, JSON) is
    outside the figure, as a start-up would be.

    `before`, `after` and `check` are as for Sampler; `check` receives the result only.
    """

    def warm_up(self, calls: int) -> None:
        for _ in range(calls):
            state = self.before()
            try:
                self.check(self.fn(state)[1])
            finally:
                self.after(state)

    def sample(self) -> float:
        state = self.before()
        try:
            seconds, result = self.fn(state)
            self.check(result)
        finally:
            self.after(state)
        if not seconds > 0:
            raise CheckFailed(f"the engine reported {seconds!r} s for a sample")
        return float(seconds) / (self.inner * self.units)


def measure(sampler: Sampler[Any], *, runs: int, warmup: int = 1) -> Stats:
    """Warm up, then take `runs` samples (failures arrive as SampleError)."""
    return interleave([sampler], runs=runs, warmup=warmup)[0]


def interleave(samplers: Sequence[Sampler[Any]], *, runs: int, warmup: int = 1,
               on_round: Callable[[], None] | None = None) -> list[Stats]:
    """Warm every sampler up, then take their samples in turn (A B A B ...).

    Alternating matters when two engines are compared on a shared machine: a burst of load
    from elsewhere then hits both sides instead of skewing their ratio. `on_round` is called
    after each round (one sample of every sampler): a progress bar's tick.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    for index, sampler in enumerate(samplers):
        try:
            sampler.warm_up(warmup)
        except Exception as exc:
            raise SampleError(index, exc) from exc
    # Garbage left by set-up should not be collected inside somebody else's sample. The
    # collector stays enabled: its cost during the calls is part of what callers pay.
    gc.collect()
    samples: list[list[float]] = [[] for _ in samplers]
    for _ in range(runs):
        for index, (sampler, taken) in enumerate(zip(samplers, samples, strict=True)):
            try:
                taken.append(sampler.sample())
            except Exception as exc:
                raise SampleError(index, exc) from exc
        if on_round is not None:
            on_round()
    return [summarize(taken) for taken in samples]


# ----- the machine a figure was measured on -------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count() or 0,
        "usable_cores": usable,
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def package_versions(distributions: Sequence[str]) -> dict[str, str | None]:
    """Installed versions (None when a distribution is missing), plus the Python version."""
    versions: dict[str, str | None] = {
        "python": f"{platform.python_implementation()} {platform.python_version()}"}
    for name in distributions:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# ----- formatting ---------------------------------------------------------------------------


def format_seconds(seconds: float | None) -> str:
    """A duration with a unit that keeps three significant digits readable."""
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, which is also readable on a terminal."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


REPO_ROOT = Path(__file__).resolve().parents[1]


def code_identity(packages: Sequence[str]) -> dict[str, Any]:
    """Which code was measured: a hash of the packages' sources, the commit, and whether the
    sources differ from it (figures move with the code they measure)."""
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((REPO_ROOT / package).rglob("*")):
            if path.suffix in {".py", ".js"}:
                digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    identity: dict[str, Any] = {"sources_sha256": digest.hexdigest()[:16], "packages": list(packages)}
    try:
        head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
        # --no-optional-locks: a status must not write the index (someone may be committing).
        dirty = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO_ROOT), "status",
                                "--porcelain", "--", *packages],
                               capture_output=True, text=True, timeout=10, check=False)
        if head.returncode == 0:
            identity["git_commit"] = head.stdout.strip()
            identity["sources_modified"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return identity


class _Result(Protocol):
    @property
    def ok(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class BenchReport:
    """One benchmark run: what was measured, where, on which code, and the results."""

    benchmark: str
    mode: Literal["quick", "full"]
    started_at: str
    duration_s: float
    machine: dict[str, Any]
    versions: dict[str, str | None]
    code: dict[str, Any]
    results: list[Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "mode": self.mode,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "machine": self.machine,
            "versions": self.versions,
            "code": self.code,
            **self.extra,
            "results": [r.to_dict() for r in self.results],
        }


@dataclass(frozen=True)
class Plan:
    """How many samples a scenario takes; warm-up calls are untimed but checked."""

    quick_runs: int
    full_runs: int
    quick_warmup: int = 1
    full_warmup: int = 3

    def runs(self, quick: bool) -> int:
        return self.quick_runs if quick else self.full_runs

    def warmup(self, quick: bool) -> int:
        return self.quick_warmup if quick else self.full_warmup
