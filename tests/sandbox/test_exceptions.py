"""Exceptions: syntax, runtime, thrown non-errors, and the exception event."""

from __future__ import annotations

import pytest

from sandbox import Sandbox


def test_syntax_error(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("let = ;", filename="bad.js")
    assert out.status == "error"
    assert out.error is not None
    assert (out.error.kind, out.error.name) == ("exception", "SyntaxError")
    assert out.value is None
    assert [e.type for e in out.events] == ["exception"]
    assert out.events[0].payload["name"] == "SyntaxError"


def test_runtime_error_has_stack_with_filename_and_function(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("function inner() { null.x }\nfunction outer() { inner() }\nouter()", filename="app.js")
    assert out.error is not None
    assert out.error.name == "TypeError"
    assert out.error.stack is not None
    assert "inner" in out.error.stack and "outer" in out.error.stack and "app.js" in out.error.stack


@pytest.mark.parametrize(("code", "message"), [
    ("throw 42", "42"),
    ("throw 'text'", "'text'"),
    ("throw {code: 7}", "{ code: 7 }"),
    ("throw null", "null"),
    ("throw undefined", "undefined"),
    ("throw Symbol('s')", "Symbol(s)"),
])
def test_thrown_non_errors(shared_sb: Sandbox, code: str, message: str) -> None:
    out = shared_sb.eval(code)
    assert out.status == "error"
    assert out.error is not None
    assert (out.error.kind, out.error.name, out.error.message) == ("exception", "Uncaught", message)


def test_custom_error_subclass(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("class AppError extends Error { constructor(m) { super(m); this.name = 'AppError' } }\n"
                         "throw new AppError('custom')")
    assert out.error is not None
    assert (out.error.name, out.error.message) == ("AppError", "custom")


def test_error_with_hostile_getters_is_still_reported(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("const e = new Error('x'); Object.defineProperty(e, 'message', {get() { throw 1 }}); throw e")
    assert out.status == "error"
    assert out.error is not None and out.error.kind == "exception"


def test_state_is_kept_after_an_exception(sb: Sandbox) -> None:
    sb.eval("var kept = 'yes'")
    assert sb.eval("kept2 = 1; throw new Error('after assignment')").status == "error"
    out = sb.eval("kept + kept2")
    assert out.value is not None and out.value["json"] == "yes1"
    assert out.session_state.state == "kept"
