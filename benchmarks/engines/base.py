"""What an engine is to the benchmark: something that may be installed, and that can run a
workload under a Sampler.

Most engines run in this process and are driven one context at a time (`Driver`); the generic
`context_sampler` turns a driver into a sampler, so that set-up, checks and fresh contexts work
the same way for all of them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from abc import ABC, abstractmethod
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from benchmarks.timing import CheckFailed, Sampler
from benchmarks.workloads import Answer, Workload, verify

TRIVIAL = "1+1"


@dataclass(frozen=True)
class Availability:
    present: bool
    version: str | None = None
    note: str | None = None  # why an engine is absent, or how it was measured
    # What is timed instead of the workload as written, when the engine lacks something it
    # needs and runs the nearest equivalent (shown in the row's label).
    equivalent: str | None = None


class Engine(ABC):
    """One way to run JavaScript that the benchmark compares."""

    name: str

    @abstractmethod
    def availability(self) -> Availability: ...

    def runs(self, workload: Workload) -> Availability:
        """Whether this engine runs `workload`: absent, with the reason, when the workload
        needs what the engine does not have (host functions, promises, timers) or what this
        benchmark does not wire for it."""
        found = self.availability()
        if found.present and workload.needs_host:
            return Availability(False, found.version,
                                f"host functions, promises and timers are not wired for "
                                f"{self.name} in this benchmark")
        return found

    @abstractmethod
    def sampler(self, workload: Workload, stack: ExitStack) -> Sampler[Any]:
        """A sampler of `workload`; what it opens is released through `stack`."""

    @abstractmethod
    def new_context_sampler(self, stack: ExitStack) -> Sampler[Any]:
        """A sampler of making a new context ready to evaluate (its first `1+1` untimed)."""


class Driver(ABC):
    """An engine's contexts, as one sampler uses them."""

    @abstractmethod
    def open(self, workload: Workload | None = None) -> Any:
        """A new context, its console wired so that `answer` can read what it printed, and
        what `workload` needs (its host functions, timers) set up."""

    @abstractmethod
    def evaluate(self, ctx: Any, code: str) -> Any:
        """The timed call: evaluate `code` and return the engine's own result."""

    def settle(self, ctx: Any, code: str) -> Any:
        """The timed call of a workload that `settles`: evaluate the expression `code` and run
        the context until its Promise settles (jobs, host calls, timers); return what it
        settled to, the engine's own result. Only drivers of engines whose `runs` accepts such
        workloads implement it."""
        raise NotImplementedError(f"{type(self).__name__} does not settle promises")

    @abstractmethod
    def answer(self, ctx: Any, raw: Any, after: str | None) -> Answer:
        """`raw` (and the console lines printed since the last answer) in JSON terms; `after`,
        when given, is evaluated too and its value reported. Errors raise CheckFailed."""

    def close(self, ctx: Any) -> None:
        return None


class EvalDriver(Driver):
    """A driver for Python bindings whose contexts have `js.eval(code)` and collect console
    lines in `lines` (native QuickJS, quickjs-rs). `plain` turns their values into JSON terms."""

    def evaluate(self, ctx: Any, code: str) -> Any:
        return ctx.js.eval(code)

    def answer(self, ctx: Any, raw: Any, after: str | None) -> Answer:
        lines = ctx.lines[:]
        ctx.lines.clear()
        try:
            extra = ctx.js.eval(after) if after is not None else None
        except Exception as exc:  # the engine's error is the check's failure
            raise CheckFailed(f"{type(exc).__name__}: {exc}") from exc
        return Answer(self.plain(raw), lines, self.plain(extra))

    def plain(self, value: Any) -> Any:
        return value


class DriverEngine(Engine):
    """An engine in this process whose contexts a `Driver` makes."""

    distribution: str | None = None  # the PyPI distribution, for the version
    module: str | None = None  # what must import for the engine to be present
    absent_note: str = "not installed"

    def availability(self) -> Availability:
        if self.module is not None:
            try:
                importlib.import_module(self.module)
            except ImportError as exc:
                return Availability(False, None, f"{self.absent_note} ({exc})")
        version = None
        if self.distribution is not None:
            try:
                version = importlib.metadata.version(self.distribution)
            except importlib.metadata.PackageNotFoundError:
                version = None
        return Availability(True, version)

    @abstractmethod
    def driver(self, stack: ExitStack) -> Driver: ...

    def sampler(self, workload: Workload, stack: ExitStack) -> Sampler[Any]:
        return context_sampler(self.driver(stack), workload, stack)

    def new_context_sampler(self, stack: ExitStack) -> Sampler[Any]:
        driver = self.driver(stack)
        made: list[Any] = []

        def new(holder: list[Any]) -> Any:
            ctx = driver.open()
            holder.append(ctx)
            return ctx

        def ready(ctx: Any) -> None:
            got = driver.answer(ctx, driver.evaluate(ctx, TRIVIAL), None)
            if got.value != 2 or isinstance(got.value, bool):
                raise CheckFailed(f"a new context evaluates {TRIVIAL} to {got.value!r}")

        def close_all(holder: list[Any]) -> None:
            for ctx in holder:
                driver.close(ctx)
            holder.clear()

        return Sampler(new, before=lambda: made, after=close_all, check=ready)


def prepared(driver: Driver, workload: Workload) -> Any:
    """A new context with the workload's prelude evaluated (and checked to have run)."""
    ctx = driver.open(workload)
    if workload.prelude:
        try:
            driver.answer(ctx, driver.evaluate(ctx, workload.prelude), None)
        except BaseException:
            driver.close(ctx)
            raise
    return ctx


def context_sampler(driver: Driver, workload: Workload, stack: ExitStack) -> Sampler[Any]:
    code, after = workload.code, workload.after
    evaluate = driver.settle if workload.settles else driver.evaluate
    if workload.fresh_context:
        def check_fresh(result: tuple[Any, Any]) -> None:
            ctx, raw = result
            verify(workload, driver.answer(ctx, raw, after))

        return Sampler(lambda ctx: (ctx, evaluate(ctx, code)),
                       before=lambda: prepared(driver, workload), after=driver.close,
                       check=check_fresh, inner=workload.batch, units=workload.units)
    ctx = prepared(driver, workload)
    stack.callback(driver.close, ctx)
    return Sampler(lambda _: evaluate(ctx, code),
                   check=lambda raw: verify(workload, driver.answer(ctx, raw, after)),
                   inner=workload.batch, units=workload.units)
