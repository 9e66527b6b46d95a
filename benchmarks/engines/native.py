"""Native QuickJS (PyPI `quickjs`, a C extension): the reference every ratio is taken against.

It has no console; a Python callback stands in for vm-system's host function. Host functions
are `add_callable` globals behind a `host` object. It has neither async host functions nor
timers: a workload that needs them runs its nearest equivalent, said so in the row's label
(an async function's result handed over as a resolved Promise; setTimeout as a queue in the
context that Python fires one callback per turn). A Promise is run to completion by draining
the job queue with `execute_pending_job`.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

from benchmarks.engines.base import Availability, Driver, DriverEngine, EvalDriver
from benchmarks.timing import CheckFailed
from benchmarks.workloads import Workload, console_shim, host_shim

NAME = "native QuickJS"

# Where a settled Promise leaves its outcome, for Python to read once the jobs are done.
SETTLER = ("globalThis.__settle = (p) => { globalThis.__settled = undefined; "
           "Promise.resolve(p).then(v => { __settled = {value: v} }, "
           "e => { __settled = {error: String(e)} }) }; undefined")
# The host's side of a timer: a callback queued in the context, fired by Python. Delays are
# ignored (fired in the order scheduled), which is exact for the workloads' setTimeout(0)s.
TIMERS = ("globalThis.__timers = []; "
          "globalThis.setTimeout = (f, ms, ...a) => { __timers.push(() => f(...a)); "
          "return __timers.length }; "
          "globalThis.__fire = () => { const t = __timers.shift(); if (!t) return false; t(); "
          "return true }; undefined")
# (what is timed instead, in the row's label; why, in its note)
ASYNC_EQUIVALENT = ("add_callable's result in Promise.resolve",
                    "no async host functions: the nearest equivalent, the sync callable's "
                    "result resolved in a Promise, its job run by execute_pending_job")
TIMER_EQUIVALENT = ("setTimeout a queue Python fires",
                    "no timers of its own: the nearest equivalent, setTimeout queues the "
                    "callback in the context and Python fires one a turn, then drains the job "
                    "queue (delays ignored: the workload's are all 0)")


class _Context:
    def __init__(self, workload: Workload | None) -> None:
        import quickjs

        self.js = quickjs.Context()
        self.lines: list[str] = []
        self.js.add_callable("__log", self.lines.append)
        self.js.eval(console_shim("__log"))
        self.timers = workload is not None and workload.timers
        if workload is not None and workload.host:
            for h in workload.host:
                self.js.add_callable(f"__host_{h.name}", h.fn)
            self.js.eval(host_shim(workload.host, promised=True))
        if workload is not None and workload.settles:
            self.js.eval(SETTLER)
        if self.timers:
            self.js.eval(TIMERS)


class _NativeDriver(EvalDriver):
    def open(self, workload: Workload | None = None) -> _Context:
        return _Context(workload)

    def settle(self, ctx: _Context, code: str) -> Any:
        js = ctx.js
        js.eval(f"__settle({code}); undefined")
        # The event loop an embedder of this binding writes: jobs until none is left, then
        # the next timer, until neither is.
        while True:
            while js.execute_pending_job():
                pass
            if not (ctx.timers and js.eval("__fire()")):
                break
        settled = js.eval("JSON.stringify(__settled)")
        outcome = json.loads(settled) if isinstance(settled, str) else None
        if not isinstance(outcome, dict):
            raise CheckFailed("the Promise did not settle")
        if "error" in outcome:
            raise CheckFailed(f"the Promise was rejected: {outcome['error']}")
        return outcome.get("value")

    def plain(self, value: Any) -> Any:
        return _plain(value)


def _plain(value: Any) -> Any:
    # Objects come back as quickjs.Object; the workloads answer with numbers and strings.
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"unexpected": type(value).__name__}


class NativeQuickJS(DriverEngine):
    name = NAME
    distribution = "quickjs"
    module = "quickjs"
    absent_note = "PyPI `quickjs` is not installed (pip install 'vm-system[bench]')"

    def runs(self, workload: Workload) -> Availability:
        found = self.availability()
        if not found.present:
            return found
        instead = [equivalent for equivalent, needed in (
            (ASYNC_EQUIVALENT, any(h.is_async for h in workload.host)),
            (TIMER_EQUIVALENT, workload.timers)) if needed]
        if not instead:
            return found
        return Availability(True, found.version, "; ".join(why for _, why in instead),
                            f"{workload.description} ({', '.join(what for what, _ in instead)})")

    def driver(self, stack: ExitStack) -> Driver:
        return _NativeDriver()
