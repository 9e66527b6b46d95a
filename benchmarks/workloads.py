"""A workload: JavaScript that every engine runs, and the answer it must give.

Engines differ in how they are driven (a Python call, a pipe to Node.js), so each engine turns
what it got back into an `Answer` and the workload alone decides whether that answer is right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.checks import expect_value
from benchmarks.timing import CheckFailed, Plan


@dataclass(frozen=True)
class HostCallable:
    """A Python function an engine offers the guest as `host.<name>(...)`: the same function,
    registered the engine's way (vm-system's `functions=`, quickjs-rs's `register`, native
    QuickJS's `add_callable`)."""

    name: str
    fn: Callable[..., Any]
    # Offered as an async host function: the guest gets a Promise, settled by the host's event
    # loop. `fn` stays plain so that an engine without async host functions can still call it.
    is_async: bool = False

    def offered(self) -> Callable[..., Any]:
        """What an engine with async host functions registers: `fn`, or a coroutine function
        around it (the smallest async host function there is)."""
        if not self.is_async:
            return self.fn
        fn = self.fn

        async def call(*args: Any) -> Any:
            return fn(*args)

        return call


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    code: str  # evaluated as a script in the global scope; its completion value is the answer
    expected: Any  # that value, as JSON
    plan: Plan
    # Evaluated once per context before anything is timed (a document to parse, say).
    prelude: str = ""
    # Every sample in a new context, made (prelude included) outside the timed stretch: for
    # code that must meet an untouched global scope (loading a library).
    fresh_context: bool = False
    # Evaluated after the timed call, untimed; its value must be `after_expected` (what a
    # loaded library defines, say).
    after: str | None = None
    after_expected: Any = None
    # The code prints exactly these lines with console.log (each engine collects them its way).
    console: tuple[str, ...] = ()
    # Calls per sample: calls of a few microseconds are timed in batches, so that reading the
    # clock is not part of the figure.
    batch: int = 1
    units: int = 1  # what one call does, in `unit`s (10,000 console lines, say)
    unit: str = "evaluation"
    # Offered as `host.<name>` in every context of the workload.
    host: tuple[HostCallable, ...] = ()
    # The code is one expression whose value is a Promise: the evaluation runs until it
    # settles (jobs, async host calls, timers) and its answer is what it settled to. An
    # expression, so that an engine may wrap it (`await (CODE)`).
    settles: bool = False
    timers: bool = False  # the code needs setTimeout

    @property
    def needs_host(self) -> bool:
        """Whether the workload needs more than an evaluation: host functions, promises run to
        completion, or timers (not every engine has them)."""
        return bool(self.host) or self.settles or self.timers


@dataclass
class Answer:
    """What one engine's call gave, in JSON terms."""

    value: Any
    console: list[str] = field(default_factory=list)
    after: Any = None


def verify(workload: Workload, answer: Answer) -> None:
    """CheckFailed unless `answer` is what `workload` must give."""
    expect_value(answer.value, workload.expected)
    if workload.after is not None:
        expect_value(answer.after, workload.after_expected, "after the call, a value of")
    if list(workload.console) != answer.console:
        expected, got = workload.console, answer.console
        if len(got) != len(expected):
            raise CheckFailed(f"expected {len(expected)} console lines, got {len(got)}")
        first = next(i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b)
        raise CheckFailed(f"console line {first}: expected {expected[first]!r}, "
                          f"got {got[first]!r}")


# The console the engines without one get: each line joined the way console.log joins its
# arguments (enough for strings and numbers, all the workloads print), handed to `sink`.
def console_shim(sink: str) -> str:
    # Ends with `undefined`: some engines refuse to hand a function back to Python.
    return (f"globalThis.console = {{log: (...a) => {sink}(a.map(String).join(' '))}}; "
            "undefined")


# `globalThis.host` for the engines that register host functions as globals (`__host_<name>`):
# the same `host.<name>(...)` calls vm-system's guest makes. `promised` names the functions the
# engine cannot offer as async ones: their result is handed over as a resolved Promise instead.
def host_shim(host: Sequence[HostCallable], promised: bool = False) -> str:
    members = ", ".join(
        f"{h.name}: (...a) => Promise.resolve(__host_{h.name}(...a))" if promised and h.is_async
        else f"{h.name}: __host_{h.name}" for h in host)
    return f"globalThis.host = Object.freeze({{{members}}}); undefined"
