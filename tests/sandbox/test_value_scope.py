"""The scope that frees the JS values the evaluation code holds, and the typed result."""

from __future__ import annotations

import pytest

from sandbox import Sandbox
from sandbox.evaluation import STOPPED, Stopped, Thrown, Value
from sandbox.value_scope import ValueScope


def test_each_owned_value_is_freed_once_in_reverse_order_on_a_normal_exit() -> None:
    freed: list[int] = []
    with ValueScope(freed.append) as scope:
        assert scope.own(11) == 11
        scope.own(22)
        scope.own(33)
        assert freed == []
    assert freed == [33, 22, 11]


def test_an_early_return_frees_too() -> None:
    freed: list[int] = []

    def pick() -> int:
        with ValueScope(freed.append) as scope:
            value = scope.own(7)
            if value:
                return value
            return 0

    assert pick() == 7 and freed == [7]


def test_a_scope_left_by_an_exception_frees_nothing() -> None:
    # The exceptions that cross a scope are traps: the instance never runs again, and calling
    # into it to free values could trap again.
    freed: list[int] = []
    with pytest.raises(RuntimeError, match="trap"), ValueScope(freed.append) as scope:
        scope.own(5)
        raise RuntimeError("trap")
    assert freed == []


def test_a_value_handed_to_a_closed_scope_is_refused() -> None:
    freed: list[int] = []
    scope = ValueScope(freed.append)
    with pytest.raises(RuntimeError, match="not open"):
        scope.own(1)
    with scope:
        pass
    with pytest.raises(RuntimeError, match="not open"):
        scope.own(2)
    assert freed == []


def test_results_are_small_typed_values() -> None:
    assert Value({"type": "number"}) == Value({"type": "number"})
    assert Thrown({"name": "E", "message": "m"}) != Value({"name": "E", "message": "m"})
    assert isinstance(STOPPED, Stopped)
    with pytest.raises(AttributeError):
        STOPPED.payload  # type: ignore[attr-defined]  # noqa: B018


def test_values_freed_by_scopes_leave_no_garbage_behind() -> None:
    # Every path of an evaluation (a value, a throw, a rejection, a module, an unhandled
    # rejection) gives its values back: after many rounds the heap is where one round left it.
    rounds = ["({a: [1, 2, {b: 'x'.repeat(100)}]})", "throw new Error('e'.repeat(100))",
              "Promise.reject(new Error('r'))", "Promise.resolve({v: [1, 2, 3]})",
              "Promise.reject(new Error('unhandled')); 1"]
    with Sandbox() as sb:
        for code in rounds * 5:
            sb.eval(code)
        before = sb.eval("0").metrics.peak_memory_bytes
        for code in rounds * 2000:
            sb.eval(code)
        after = sb.eval("0").metrics.peak_memory_bytes
    assert after - before < 1 << 20, f"linear memory grew by {after - before} bytes over 10,000 evaluations"
