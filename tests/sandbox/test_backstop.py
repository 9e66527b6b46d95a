"""The hard backstop: a guest that never reaches the graceful interrupt check is still stopped.

A healthy guest always polls the interrupt handler, so the fault is injected: the watch's
graceful check is switched off (as if the guest spun in a corrupted allocator or a native
call that never returns to the interpreter). The engine is real; only that check is silenced.
"""

from __future__ import annotations

import threading

from sandbox import Limits, Sandbox
from sandbox.limits import BACKSTOP_MS


def _deaf(sb: Sandbox) -> None:
    sb._watch.interrupt = lambda stack_pointer: False  # type: ignore[method-assign]


def test_cpu_backstop_traps_a_guest_that_never_polls_and_rolls_back() -> None:
    with Sandbox(limits=Limits(cpu_ms=100, wall_ms=10_000)) as sb:
        sb.eval("var kept = 41")
        sb.checkpoint()
        _deaf(sb)
        out = sb.eval("kept = 0; for (;;) {}")
        assert out.status == "timeout"
        assert out.error is not None and out.error.kind == "cpu_limit"
        assert out.error.limit is not None and out.error.limit["name"] == "cpu_ms"
        assert out.error.limit["used"] >= 100 + BACKSTOP_MS
        assert out.session_state.state == "rolled_back"
        # The CPU clock is what stopped it (kind and limit name above), on its backstop: the CPU
        # time used is the deadline plus the backstop plus at most a few ticks. Ticks come from
        # the engine's ticker thread, which a loaded host can hold back while this one runs, so
        # the bound leaves room for that.
        # generous: far below what the 10 s wall limit would have let the deaf guest burn
        assert out.error.limit["used"] < 100 + BACKSTOP_MS + 1_000
        # generous: below the 10 s wall limit, so the wall clock did not end it
        assert out.metrics is not None and out.metrics.wall_ms < 10_000
        assert [e.type for e in out.events] == ["system", "limit"]
        assert sb.eval("kept + 1").value["json"] == 42  # type: ignore[index]


def test_wall_backstop_traps_a_guest_that_never_polls() -> None:
    with Sandbox(limits=Limits(cpu_ms=10_000, wall_ms=100)) as sb:
        _deaf(sb)
        out = sb.eval("for (;;) {}")
        assert out.status == "timeout"
        assert out.error is not None and out.error.kind == "timeout"
        assert out.error.limit is not None and out.error.limit["used"] >= 100 + BACKSTOP_MS
        assert out.session_state.state == "rolled_back"
        # The wall clock's backstop stopped it (kind, used and the rollback above); a descheduled
        # host overshoots the deadline by however long it was away.
        # generous: only proves it did not run on to the 10 s CPU limit's backstop
        assert out.metrics is not None and 100 + BACKSTOP_MS <= out.metrics.wall_ms < 5_000


def test_cancel_backstop_traps_a_guest_that_never_polls() -> None:
    with Sandbox(limits=Limits(cpu_ms=10_000, wall_ms=10_000)) as sb:
        _deaf(sb)
        timer = threading.Timer(0.1, sb.cancel)
        timer.start()
        try:
            out = sb.eval("for (;;) {}")
        finally:
            timer.cancel()
        assert out.status == "cancelled"
        assert out.session_state.state == "rolled_back"
        # Only the cancel can have ended it (status): the limits are 10 s.
        # generous: the cancel is armed at 0.1 s and trapped 25 ms later; this only proves it
        # was not left pending for seconds (the timer thread may itself start late under load)
        assert out.metrics is not None and out.metrics.wall_ms < 5_000


def test_a_failing_deadline_check_traps_the_guest_as_a_crash() -> None:
    with Sandbox(limits=Limits(cpu_ms=2_000, wall_ms=2_000)) as sb:
        sb.eval("var kept = 'yes'")
        sb.checkpoint()

        def broken() -> bool:
            raise RuntimeError("boom")

        sb._watch.backstop_due = broken  # type: ignore[method-assign]
        out = sb.eval("for (;;) {}")
        assert out.status == "crashed"
        assert out.error is not None and "deadline check failed" in out.error.message
        assert out.session_state.state == "rolled_back"
        del sb._watch.backstop_due
        assert sb.eval("kept").value["json"] == "yes"  # type: ignore[index]


def test_metrics_report_no_fuel() -> None:
    with Sandbox() as sb:
        out = sb.eval("1 + 1")
        assert out.metrics is not None and out.metrics.fuel is None
        assert "fuel" in out.metrics.to_dict()
