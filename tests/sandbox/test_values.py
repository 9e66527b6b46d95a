"""The value payload of every kind of JavaScript value: type, preview, json."""

from __future__ import annotations

import pytest

from sandbox import Sandbox

CASES = [
    # code, type, preview, json (or "absent")
    ("1 + 1", "number", "2", 2),
    ("-7", "number", "-7", -7),
    ("2 ** 31", "number", "2147483648", 2147483648),
    ("0.1 + 0.2", "number", "0.30000000000000004", 0.30000000000000004),
    ("1e21", "number", "1e+21", 1e21),
    ("NaN", "number", "NaN", "absent"),
    ("-Infinity", "number", "-Infinity", "absent"),
    ("-0", "number", "-0", "absent"),
    ("true", "boolean", "true", True),
    ("null", "null", "null", None),
    ("undefined", "undefined", "undefined", "absent"),
    ("'hi'", "string", "'hi'", "hi"),
    ("\"it's\"", "string", "\"it's\"", "it's"),
    ("'a\\nb'", "string", "'a\\nb'", "a\nb"),
    ("10n ** 20n", "bigint", "100000000000000000000n", "absent"),
    ("Symbol('s')", "symbol", "Symbol(s)", "absent"),
    ("(function foo() {})", "function", "[Function: foo]", "absent"),
    ("(() => 1)", "function", "[Function (anonymous)]", "absent"),
    ("(class A {})", "function", "[class A]", "absent"),
    ("[1, 'a', [2]]", "array", "[ 1, 'a', [ 2 ] ]", [1, "a", [2]]),
    ("[]", "array", "[]", []),
    ("({a: 1, 'b-c': [true, null]})", "object", "{ a: 1, 'b-c': [ true, null ] }", {"a": 1, "b-c": [True, None]}),
    ("({})", "object", "{}", {}),
    ("new Map([[1, 'x']])", "map", "Map(1) { 1 => 'x' }", {}),
    ("new Set([1, 2])", "set", "Set(2) { 1, 2 }", {}),
    ("new Date(0)", "date", "1970-01-01T00:00:00.000Z", "1970-01-01T00:00:00.000Z"),
    ("/ab+c/gi", "regexp", "/ab+c/gi", {}),
    ("new Uint8Array([1, 2])", "object", "Uint8Array(2) [ 1, 2 ]", {"0": 1, "1": 2}),
    ("Object.create(null)", "object", "[Object: null prototype] {}", {}),
    ("new (class Point { constructor() { this.x = 1 } })()", "object", "Point { x: 1 }", {"x": 1}),
    ("({ get g() { return 1 } })", "object", "{ g: [Getter] }", {"g": 1}),
    ("[1, , 3]", "array", "[ 1, <1 empty item>, 3 ]", [1, None, 3]),
    ("new Error('bad')", "error", None, {}),
]


@pytest.mark.parametrize(("code", "type_", "preview", "json_"), CASES, ids=[c[0] for c in CASES])
def test_value_payload(shared_sb: Sandbox, code: str, type_: str, preview: str | None, json_: object) -> None:
    out = shared_sb.eval(code)
    assert out.status == "ok", out.error
    assert out.value is not None
    assert out.value["type"] == type_
    if preview is not None:
        assert out.value["preview"] == preview
    if json_ == "absent":
        assert "json" not in out.value
    else:
        assert out.value["json"] == json_
    assert out.events[-1].type == "value" and out.events[-1].payload == out.value


def test_error_value_preview_has_name_message_and_stack(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("function where() { return new TypeError('bad') }\nwhere()")
    assert out.value is not None
    assert out.value["preview"].startswith("TypeError: bad\n")
    assert "where" in out.value["preview"]


def test_cyclic_object_is_described_without_json(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("const o = {name: 'o'}; o.self = o; o")
    assert out.status == "ok"
    assert out.value == {"type": "object", "preview": "{ name: 'o', self: [Circular *1] }"}


def test_nesting_deeper_than_two_levels_is_abbreviated(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("({a: {b: {c: {d: 1}}}, l: [[[[1]]]]})")
    assert out.value is not None
    assert out.value["preview"] == "{ a: { b: { c: [Object] } }, l: [ [ [Array] ] ] }"
    assert out.value["json"] == {"a": {"b": {"c": {"d": 1}}}, "l": [[[[1]]]]}


def test_long_arrays_are_cut_in_the_preview_but_whole_in_json(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("Array.from({length: 150}, (_, i) => i)")
    assert out.value is not None
    assert out.value["preview"].endswith("... 50 more items\n]")
    assert out.value["json"] == list(range(150))


def test_huge_string_preview_is_capped_and_json_omitted_beyond_a_megabyte(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("'x'.repeat(2 * 1024 * 1024)")
    assert out.status == "ok"
    assert out.value is not None
    assert out.value["type"] == "string"
    assert len(out.value["preview"]) <= 4097
    assert "json" not in out.value


def test_string_of_a_megabyte_keeps_exact_json(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("'é'.repeat(100000)")
    assert out.value is not None
    assert out.value["json"] == "é" * 100000


def test_lone_surrogates_survive_in_json_and_are_replaced_in_preview(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("'a\\ud800b'")
    assert out.value is not None
    assert out.value["json"] == "a\ud800b"
    assert out.value["preview"] == "'a\ufffdb'"


def test_source_with_lone_surrogate_and_non_ascii(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("'\ud83d\ude00 \u00e9'.length")
    assert out.value is not None and out.value["json"] == 4


def test_state_persists_between_evaluations(sb: Sandbox) -> None:
    assert sb.eval("var counter = 1; let lexical = 'kept'; function bump() { return ++counter }").ok
    assert sb.eval("bump(); bump()").value["json"] == 3  # type: ignore[index]
    assert sb.eval("lexical + counter").value["json"] == "kept3"  # type: ignore[index]


def test_strict_mode_is_applied_when_asked(sb: Sandbox) -> None:
    sloppy = sb.eval("undeclared = 1; undeclared")
    assert sloppy.ok
    strict = sb.eval("alsoUndeclared = 1", strict=True)
    assert strict.status == "error"
    assert strict.error is not None and strict.error.name == "ReferenceError"


def test_call_invokes_a_global_function_with_json_arguments(sb: Sandbox) -> None:
    sb.eval("function add(a, b) { return {sum: a.x + b} }")
    out = sb.call("add", {"x": 40}, 2)
    assert out.value is not None and out.value["json"] == {"sum": 42}
    missing = sb.call("nope")
    assert missing.status == "error" and missing.error is not None
    assert missing.error.name == "TypeError"
    with pytest.raises(ValueError):
        sb.call("add", object())


def test_define_global_is_frozen_and_read_only(sb: Sandbox) -> None:
    sb.define_global("args", {"n": 1, "list": [1, 2]})
    out = sb.eval("'use strict'; try { args.n = 2 } catch (e) { e.name }")
    assert out.value is not None and out.value["json"] == "TypeError"
    out = sb.eval("args.list.push(3)")
    assert out.status == "error"
    out = sb.eval("args = 5; JSON.stringify(args)")
    assert out.value is not None and out.value["json"] == '{"n":1,"list":[1,2]}'
    sb.define_global("args", ["replaced"])
    assert sb.eval("args").value["json"] == ["replaced"]  # type: ignore[index]
