"""The stack: deep recursion works, every overflow ends as stack_overflow with a rollback,
and no result is ever reported from an instance whose guard region is dirty."""

from __future__ import annotations

import pytest

from sandbox import Limits, Sandbox
from sandbox.memory_layout import STACK_GUARD


@pytest.fixture(scope="module")
def deep() -> Sandbox:
    sb = Sandbox(limits=Limits(wall_ms=3000, cpu_ms=2000))
    sb.eval("var marker = 'alive'; function f(n) { return n ? f(n - 1) + 1 : 0 }")
    sb.checkpoint("setup")
    return sb


def _alive(sb: Sandbox) -> None:
    out = sb.eval("marker")
    assert out.value is not None and out.value["json"] == "alive"


@pytest.mark.parametrize("depth", [390, 1000, 2000])
def test_plain_recursion_reaches_two_thousand_frames(deep: Sandbox, depth: int) -> None:
    out = deep.eval(f"f({depth})")
    assert out.status == "ok"
    assert out.value is not None and out.value["json"] == depth


def _many_locals(count: int, depth: int) -> str:
    body = "".join(f"var v{i} = {i};" for i in range(count))
    return f"function h(n) {{ {body} return n ? h(n - 1) + v1 : 0 }} h({depth})"


OVERFLOWS = {
    "unbounded plain recursion": "function g() { return g() + 1 } g()",
    "recursion in a promise job": "Promise.resolve().then(function r() { return r() + 1 }); 1",
    "deep JSON.parse": "JSON.parse('['.repeat(200000) + ']'.repeat(200000))",
    "getter recursion": "const o = { get x() { return this.x + 1 } }; o.x",
    "toString recursion": "const t = { toString() { return String(this) } }; String(t)",
    "mutual recursion": "function a(n) { return b(n) + 1 } function b(n) { return a(n) + 1 } a(0)",
    "frames with thousands of locals": _many_locals(5000, 400),
    "frames with tens of thousands of locals": _many_locals(20000, 100),
}


@pytest.mark.parametrize("code", OVERFLOWS.values(), ids=list(OVERFLOWS))
def test_every_overflow_is_a_stack_overflow_and_rolls_back(deep: Sandbox, code: str) -> None:
    before = deep.checkpoint_label
    out = deep.eval(code)
    assert out.status == "limit_exceeded", out.error
    assert out.error is not None and out.error.kind == "stack_overflow"
    assert out.value is None
    assert out.session_state.state == "rolled_back"
    assert out.session_state.checkpoint == before
    assert [e.type for e in out.events][-2:] == ["system", "limit"]
    _alive(deep)


def test_catching_the_overflow_does_not_help(deep: Sandbox) -> None:
    out = deep.eval("function g() { try { return g() + 1 } catch (e) { return g() } } g()")
    assert out.error is not None and out.error.kind == "stack_overflow"
    _alive(deep)


def test_a_dirty_guard_never_yields_a_result() -> None:
    with Sandbox() as sb:
        sb.eval("var kept = 1")
        sb.checkpoint()
        inst = sb._instance
        # Corrupt the guard the way a runaway frame would, then run a harmless script.
        inst.write(inst.layout.stack_lo + STACK_GUARD - 64, b"\x00" * 8)
        out = sb.eval("kept + 1")
        assert out.status == "limit_exceeded"
        assert out.value is None
        assert out.error is not None and out.error.kind == "stack_overflow"
        assert out.session_state.state == "rolled_back"
        assert sb.eval("kept + 1").value["json"] == 2  # type: ignore[index]
