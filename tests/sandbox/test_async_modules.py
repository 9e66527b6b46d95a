"""Promises, async functions and ES modules settle inside the evaluation."""

from __future__ import annotations

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
