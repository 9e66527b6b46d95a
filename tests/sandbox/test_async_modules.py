"""Promises, async functions and ES modules settle inside the evaluation."""

from __future__ import annotations

import pytest

from sandbox import Sandbox


def test_async_function_result_is_settled(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("(async () => { await null; await new Promise(r => r()); return {done: true} })()")
    assert out.status == "ok"
    assert out.value is not None and out.value["json"] == {"done": True}


def test_rejected_promise_is_an_exception(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("(async () => { throw new RangeError('async bad') })()")
    assert out.status == "error"
    assert out.error is not None and (out.error.name, out.error.message) == ("RangeError", "async bad")


def test_never_settling_promise_is_reported_pending(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("new Promise(() => {})")
    assert out.status == "ok"
    assert out.value == {"type": "promise", "preview": "Promise { <pending> }"}


def test_microtasks_run_after_a_plain_script(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("Promise.resolve().then(() => console.log('job ran')); 'sync'")
    assert [e.type for e in out.events] == ["console", "value"]
    assert out.value is not None and out.value["json"] == "sync"


def test_console_from_promise_jobs_keeps_order(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("(async () => { for (let i = 0; i < 3; i++) { await null; console.log(i) } return 'end' })()")
    assert [e.payload.get("text") for e in out.events if e.type == "console"] == ["0", "1", "2"]


def test_module_with_top_level_await_returns_namespace(sb: Sandbox) -> None:
    out = sb.eval_module("export const a = 1; const b = await Promise.resolve(2); export default a + b;")
    assert out.status == "ok"
    assert out.value is not None and out.value["json"] == {"a": 1, "default": 3}


def test_module_errors(sb: Sandbox) -> None:
    syntax = sb.eval_module("export const = 1")
    assert syntax.error is not None and syntax.error.name == "SyntaxError"
    thrown = sb.eval_module("await null; throw new Error('in module')")
    assert thrown.error is not None and thrown.error.message == "in module"


def test_module_can_set_globals_for_later_scripts(sb: Sandbox) -> None:
    assert sb.eval_module("globalThis.fromModule = 'ok'; export {}").ok
    out = sb.eval("fromModule")
    assert out.value is not None and out.value["json"] == "ok"


def test_imports_are_refused(sb: Sandbox) -> None:
    out = sb.eval_module("import { x } from './local.js'; export default x")
    assert out.status == "error"
    assert out.error is not None and "could not load module" in out.error.message


# ----- promises rejected without a handler -----------------------------------------------------

def _unhandled(out) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.payload["message"] for e in out.events if e.type == "system"]


@pytest.mark.parametrize(("code", "reported"), [
    ("Promise.reject(new Error('boom')); 1", ["Uncaught (in promise) Error: boom"]),
    ("(async () => { throw new TypeError('bad') })(); 2", ["Uncaught (in promise) TypeError: bad"]),
    ("Promise.resolve().then(() => { throw new RangeError('in a job') }); 3",
     ["Uncaught (in promise) RangeError: in a job"]),
    ("Promise.reject(42); 4", ["Uncaught (in promise) 42"]),
    # Handled before the evaluation ends, or the evaluation's own result: nothing extra.
    ("const p = Promise.reject(1); p.catch(() => {}); 5", []),
    ("(async () => { try { await Promise.reject(new Error('x')) } catch { } })(); 6", []),
])
def test_rejections_nobody_handled_are_reported(code: str, reported: list[str]) -> None:
    with Sandbox() as sb:
        out = sb.eval(code)
        assert out.status == "ok", out.error
        assert _unhandled(out) == reported
        # A system event, before the terminal event.
        assert out.events[-1].type == "value"
        assert sb.eval("1 + 1").events[0].type == "value"  # reported once, not again


@pytest.mark.parametrize("run", [
    lambda sb: sb.eval("Promise.reject(new Error('result'))"),
    lambda sb: sb.eval_module("throw new Error('result')"),
    lambda sb: sb.eval_module("await Promise.reject(new Error('result'))"),
    lambda sb: (sb.eval("async function f() { throw new Error('result') }"), sb.call("f"))[1],
])
def test_a_rejected_result_is_the_error_not_an_unhandled_rejection(run) -> None:  # type: ignore[no-untyped-def]
    with Sandbox() as sb:
        out = run(sb)
        assert out.status == "error" and out.error.message == "result"
        assert _unhandled(out) == []


def test_a_rejection_handled_in_a_later_evaluation_was_reported_when_it_ended_unhandled() -> None:
    with Sandbox() as sb:
        first = sb.eval("globalThis.later = Promise.reject(new Error('late')); 1")
        assert _unhandled(first) == ["Uncaught (in promise) Error: late"]
        assert _unhandled(sb.eval("later.catch(() => 0); 2")) == []


def test_a_flood_of_rejections_is_bounded() -> None:
    from sandbox.rejections import MAX_HELD_REJECTIONS

    with Sandbox() as sb:
        out = sb.eval("for (let i = 0; i < 5000; i++) Promise.reject(i); 'done'")
        assert out.status == "ok"
        messages = _unhandled(out)
        assert len(messages) == MAX_HELD_REJECTIONS + 1
        assert messages[-1].startswith(f"{5000 - MAX_HELD_REJECTIONS} promise(s) rejected")


def test_a_stopped_evaluation_counts_its_rejections_without_describing_them() -> None:
    from sandbox import Limits

    with Sandbox(limits=Limits(cpu_ms=50)) as sb:
        out = sb.eval("Promise.reject(new Error('before the loop')); for (;;) {}")
        assert out.status == "timeout"
        assert [m.split(" promise")[0] for m in _unhandled(out)] == ["1"]
        assert sb.eval("'still fine'").value["json"] == "still fine"  # type: ignore[index]
