"""Values nested to any depth cross the boundary without a host exception (issue 11, part 1).

Whatever the guest hands the host (a result, console arguments, a thrown value, an error's
properties, a call's result) and whatever the host sends in (call arguments, define_global
values) is bounded by JSON_MAX_DEPTH: deeper JSON is never produced in the guest, and the
host refuses to send it, before any parser on the way has to recurse through it.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import Limits, Sandbox
from sandbox.json_depth import JSON_MAX_DEPTH

DEPTHS = [1, 10, 63, 64, 65, 500, 1000, 5000, 100000]

# The loops building 100,000 levels take ~100 ms of CPU; the default 2 s is plenty.
LIMITS = Limits(cpu_ms=10000, wall_ms=20000)
OMITTED = f"it is nested deeper than {JSON_MAX_DEPTH} levels"


def nested_object(depth: int) -> str:
    """JS source of `depth` nested objects: {o:{o:...{}}} (depth 1 is `{}`)."""
    return f"(() => {{ let o = {{}}; for (let i = 1; i < {depth}; i++) o = {{ o }}; return o; }})()"


def nested_array(depth: int) -> str:
    return f"(() => {{ let a = []; for (let i = 1; i < {depth}; i++) a = [a]; return a; }})()"


def python_nested(depth: int) -> object:
    value: object = {}
    for _ in range(depth - 1):
        value = {"o": value}
    return value


def python_depth(value: object) -> int:
    depth = 0
    while isinstance(value, (dict, list)):
        depth += 1
        value = value.get("o") if isinstance(value, dict) else (value[0] if value else None)
    return depth


@pytest.fixture(scope="module")
def deep_sb():
    with Sandbox(limits=LIMITS) as sandbox:
        yield sandbox


def test_the_limit_is_in_the_documented_range() -> None:
    assert 64 <= JSON_MAX_DEPTH <= 200


@pytest.mark.parametrize("depth", DEPTHS)
def test_a_deep_object_result_is_ok_with_a_depth_limited_preview(deep_sb: Sandbox, depth: int) -> None:
    out = deep_sb.eval(nested_object(depth))
    assert out.status == "ok", out.error
    assert out.session_state.state == "kept"
    expected = {1: "{}", 2: "{ o: {} }", 3: "{ o: { o: {} } }"}.get(depth, "{ o: { o: { o: [Object] } } }")
    assert out.value["preview"] == expected
    if depth <= JSON_MAX_DEPTH:
        assert python_depth(out.value["json"]) == depth
        assert "json_omitted" not in out.value
    else:
        assert "json" not in out.value
        assert out.value["json_omitted"] == OMITTED
    # What the daemon does with it next: store it as JSON and serve it.
    json.loads(json.dumps(out.to_dict()))


@pytest.mark.parametrize("depth", DEPTHS)
def test_a_deep_array_result_is_ok(deep_sb: Sandbox, depth: int) -> None:
    out = deep_sb.eval(nested_array(depth))
    assert out.status == "ok", out.error
    assert ("json" in out.value) == (depth <= JSON_MAX_DEPTH)
    assert ("json_omitted" in out.value) == (depth > JSON_MAX_DEPTH)


@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_console_arguments_are_printed(deep_sb: Sandbox, depth: int) -> None:
    out = deep_sb.eval(f"{{ const v = {nested_object(depth)}; console.log(v); console.log('%j', v); 1 }}")
    assert out.status == "ok", out.error
    texts = [e.payload["text"] for e in out.events if e.type == "console"]
    assert texts[0] == {1: "{}", 2: "{ o: {} }", 3: "{ o: { o: {} } }"}.get(depth, "{ o: { o: { o: [Object] } } }")
    if depth <= JSON_MAX_DEPTH:
        assert python_depth(json.loads(texts[1])) == depth
    else:
        assert texts[1] == f"[no JSON: {OMITTED}]"


@pytest.mark.parametrize("depth", DEPTHS)
def test_a_thrown_deep_object_is_described(deep_sb: Sandbox, depth: int) -> None:
    out = deep_sb.eval(f"throw {nested_object(depth)}")
    assert out.status == "error"
    assert out.error.kind == "exception"
    assert out.error.name == "Uncaught"
    assert out.session_state.state == "kept"


@pytest.mark.parametrize("depth", DEPTHS)
def test_an_error_with_a_deep_property_is_described(deep_sb: Sandbox, depth: int) -> None:
    out = deep_sb.eval(f"{{ const e = new TypeError('deep'); e.detail = {nested_object(depth)};"
                       " e.cause = e.detail; throw e }")
    assert out.status == "error"
    assert (out.error.name, out.error.message) == ("TypeError", "deep")


@pytest.mark.parametrize("depth", DEPTHS)
def test_a_deep_error_result_and_a_deep_rejection(deep_sb: Sandbox, depth: int) -> None:
    out = deep_sb.eval(f"{{ const e = new Error('r'); e.deep = {nested_object(depth)}; Promise.reject(e.deep); e }}")
    assert out.status == "ok", out.error
    assert out.value["type"] == "error"
    rejections = [e for e in out.events if e.type == "system"]
    assert rejections and rejections[0].payload["message"].startswith("Uncaught (in promise) {")


@pytest.mark.parametrize("depth", DEPTHS)
def test_a_deep_call_result_is_ok(deep_sb: Sandbox, depth: int) -> None:
    assert deep_sb.eval(f"function deep() {{ return {nested_array(depth)}; }}").ok
    out = deep_sb.call("deep")
    assert out.status == "ok", out.error
    assert ("json" in out.value) == (depth <= JSON_MAX_DEPTH)


@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_call_arguments_are_refused_or_passed_whole(deep_sb: Sandbox, depth: int) -> None:
    assert deep_sb.eval("function depthOf(v) { let d = 0;"
                        " while (v && typeof v === 'object') { d++; v = v.o; } return d; }").ok
    if depth <= JSON_MAX_DEPTH:
        out = deep_sb.call("depthOf", python_nested(depth))
        assert out.status == "ok"
        assert out.value["json"] == depth
    else:
        with pytest.raises(ValueError, match=f"nested deeper than {JSON_MAX_DEPTH} levels"):
            deep_sb.call("depthOf", python_nested(depth))
        assert deep_sb.eval("1").ok  # nothing reached the guest


@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_define_global_values_are_refused_or_defined_whole(deep_sb: Sandbox, depth: int) -> None:
    if depth <= JSON_MAX_DEPTH:
        deep_sb.define_global("DEEP", python_nested(depth))
        out = deep_sb.eval("{ let dd = 0; for (let v = DEEP; v && typeof v === 'object'; v = v.o) dd++; dd }")
        assert out.value["json"] == depth
    else:
        with pytest.raises(ValueError, match=f"nested deeper than {JSON_MAX_DEPTH} levels"):
            deep_sb.define_global("DEEP", python_nested(depth))


def test_a_shared_container_is_checked_at_its_deepest_use(deep_sb: Sandbox) -> None:
    shared = python_nested(JSON_MAX_DEPTH - 1)
    # Reached at depth 1 first (popped last), then at depth 2: together 65 levels.
    value = {"deep": {"o": shared}, "shallow": shared}
    with pytest.raises(ValueError, match="nested deeper"):
        deep_sb.call("depthOf", value)


def test_a_cyclic_call_argument_is_refused() -> None:
    cyclic: list = []
    cyclic.append(cyclic)
    with Sandbox() as sb, pytest.raises(ValueError):
        sb.call("f", cyclic)


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(min_value=1, max_value=3000), array=st.booleans())
def test_any_depth_of_mixed_nesting_is_ok(depth: int, array: bool) -> None:
    with Sandbox(limits=LIMITS) as sb:
        source = nested_array(depth) if array else nested_object(depth)
        out = sb.eval(f"const v = {source}; console.log(v); v")
        assert out.status == "ok", out.error
        assert ("json" in out.value) != ("json_omitted" in out.value)
        assert ("json" in out.value) == (depth <= JSON_MAX_DEPTH)
