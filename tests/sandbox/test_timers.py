"""Timers and running to completion: an evaluation ends when its code, its jobs, its timers and
its host calls are all done; nothing of it stays scheduled after it ends."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sandbox import Limits, Sandbox


def _logs(outcome: Any) -> list[str]:
    return [e.payload["text"] for e in outcome.events if e.type == "console"]


def test_the_value_is_reported_after_the_timers_ran() -> None:
    with Sandbox() as sb:
        out = sb.eval("setTimeout(() => console.log('late'), 30); 'now'")
        assert out.status == "ok"
        assert out.value["json"] == "now"  # type: ignore[index]
        assert [e.type for e in out.events] == ["console", "value"]
        assert out.metrics is not None and out.metrics.timers_fired == 1
        assert out.metrics.wall_ms >= 30


def test_order_by_delay_then_by_scheduling_with_microtasks_in_between() -> None:
    with Sandbox() as sb:
        out = sb.eval("""
            const log = (s) => console.log(s);
            setTimeout(() => log('t20'), 20);
            setTimeout(() => { log('t0a'); queueMicrotask(() => log('m-after-t0a')) }, 0);
            setTimeout(() => log('t0b'), 0);
            setTimeout(() => log('t10'), 10);
            Promise.resolve().then(() => log('job'));
            queueMicrotask(() => log('micro'));
            log('sync');""")
        assert _logs(out) == ["sync", "job", "micro", "t0a", "m-after-t0a", "t0b", "t10", "t20"]


def test_arguments_ids_and_clearing() -> None:
    with Sandbox() as sb:
        out = sb.eval("""
            const a = setTimeout((x, y) => console.log('a', x, y), 0, 1, 'two');
            const b = setTimeout(() => console.log('b'), 0);
            clearTimeout(b);
            clearTimeout(123456); clearTimeout('x'); clearTimeout(); clearInterval(null);
            [typeof a, a !== b]""")
        assert out.value["json"] == ["number", True]  # type: ignore[index]
        assert _logs(out) == ["a 1 two"]
        assert out.metrics is not None
        assert (out.metrics.timers_fired, out.metrics.timers_cancelled) == (1, 1)


def test_an_interval_fires_until_cleared() -> None:
    with Sandbox() as sb:
        out = sb.eval("let n = 0; const i = setInterval(() => { if (++n === 4) clearInterval(i) }, 1); 'x'")
        assert out.status == "ok"
        assert sb.eval("n").value["json"] == 4  # type: ignore[index]
        assert out.metrics is not None and out.metrics.timers_fired == 4


@pytest.mark.parametrize("delay", ["NaN", "-5", "undefined", "'10'", "2**31", "Infinity", "2**31-1"])
def test_odd_delays_schedule_as_node_does(delay: str) -> None:
    # Node: NaN, negative and missing are 0; a delay that does not fit 32 bits is 1 ms.
    with Sandbox() as sb:
        out = sb.eval(f"setTimeout(() => console.log('ran'), {delay}); 'ok'",
                      limits=Limits(wall_ms=500))
        if delay == "2**31-1":  # ~24.8 days: the wall limit ends it, the timer is cancelled
            assert out.status == "timeout"
            assert out.metrics is not None and out.metrics.timers_cancelled == 1
        else:
            assert out.status == "ok", out.error
            assert _logs(out) == ["ran"]


@pytest.mark.parametrize("code", ["setTimeout('code string', 0)", "setInterval(null)",
                                  "queueMicrotask(5)"])
def test_a_callback_must_be_a_function(code: str) -> None:
    with Sandbox() as sb:
        out = sb.eval(code)
        assert out.error is not None and out.error.name == "TypeError"


def test_a_throwing_callback_ends_the_evaluation_and_cancels_the_rest() -> None:
    with Sandbox() as sb:
        out = sb.eval("setTimeout(() => { throw new Error('boom') }, 0);"
                      "setTimeout(() => console.log('never'), 50); 'value'")
        assert out.status == "error"
        assert out.error is not None and (out.error.name, out.error.message) == ("Error", "boom")
        assert _logs(out) == []
        assert out.metrics is not None and out.metrics.timers_cancelled == 1
        assert out.session_state.state == "kept"
        quiet = sb.eval("new Promise(r => setTimeout(r, 80))")
        assert _logs(quiet) == []


def test_an_interval_never_cleared_ends_at_the_wall_limit_and_is_gone_after() -> None:
    with Sandbox() as sb:
        out = sb.eval("setInterval(() => console.log('tick'), 5)", limits=Limits(wall_ms=150))
        assert out.status == "timeout"
        assert out.error is not None and out.error.kind == "timeout"
        assert out.metrics is not None and out.metrics.timers_cancelled == 1
        later = sb.eval("new Promise(r => setTimeout(r, 50)).then(() => 'done')")
        assert "tick" not in _logs(later)


def test_waiting_is_not_cpu_time() -> None:
    with Sandbox() as sb:
        out = sb.eval("setTimeout(() => {}, 300)", limits=Limits(cpu_ms=50, wall_ms=10_000))
        assert out.status == "ok", out.error
        assert out.metrics is not None and out.metrics.cpu_ms < 50


def test_a_busy_interval_ends_at_the_cpu_limit() -> None:
    with Sandbox() as sb:
        out = sb.eval("setInterval(() => { for (let i = 0; i < 1e5; i++); }, 0)",
                      limits=Limits(cpu_ms=50, wall_ms=30_000))
        assert out.status == "timeout"
        assert out.error is not None and out.error.kind == "cpu_limit"


def test_pending_timers_are_capped() -> None:
    with Sandbox() as sb:
        out = sb.eval("""
            let n = 0, err;
            try { for (;;) { setTimeout(() => {}, 1e6); n++ } } catch (e) { err = e.name + ': ' + e.message }
            for (let i = 1; i < 100000; i++) clearTimeout(i);
            [n, err]""")
        assert out.status == "ok", out.error
        assert out.value["json"] == [10_000, "RangeError: too many pending timers"]  # type: ignore[index]


def test_cancel_ends_a_wait_on_a_timer() -> None:
    with Sandbox() as sb:
        timer = threading.Timer(0.1, sb.cancel)
        timer.start()
        out = sb.eval("setTimeout(() => console.log('late'), 60_000)", limits=Limits(wall_ms=120_000))
        timer.join()
        assert out.status == "cancelled"
        assert out.metrics is not None and out.metrics.wall_ms < 60_000  # generous: a hang guard, the wall limit
        assert _logs(out) == []


def test_a_module_awaiting_what_nothing_can_settle_is_a_deadlock() -> None:
    with Sandbox() as sb:
        out = sb.eval_module("await new Promise(() => {})", limits=Limits(wall_ms=60_000))
        assert out.status == "error"
        assert out.error is not None and (out.error.kind, out.error.name) == ("deadlock", "DeadlockError")
        assert out.events[-1].type == "exception"
        assert out.metrics is not None and out.metrics.wall_ms < 60_000  # generous: a hang guard, the wall limit
        ok = sb.eval_module("await new Promise(r => setTimeout(r, 10)); export const x = 1")
        assert ok.value["json"] == {"x": 1}  # type: ignore[index]
        # A script's pending promise is a value, as before: it is not awaited.
        pending = sb.eval("new Promise(() => {})")
        assert pending.value["preview"] == "Promise { <pending> }"  # type: ignore[index]


@pytest.mark.parametrize("ending", ["throw new Error('x')", "while (true) {}",
                                    "function r() { r() } r()", "'x'.repeat(1 << 29).repeat(8)"])
def test_after_any_ending_nothing_of_the_evaluation_fires_later(ending: str) -> None:
    with Sandbox(limits=Limits(cpu_ms=200, mem_mb=32), auto_checkpoint=True) as sb:
        sb.eval("globalThis.keep = 1")
        sb.eval(f"setTimeout(() => console.log('stale'), 0); setInterval(() => console.log('stale'), 1); {ending}")
        later = sb.eval("new Promise(r => setTimeout(r, 30)).then(() => keep)")
        assert later.status == "ok", later.error
        assert _logs(later) == []
        assert later.metrics is not None and later.metrics.timers_fired == 1
