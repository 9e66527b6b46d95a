"""Polluting a built-in changes nothing the host sees (issue 11, part 2).

For every intrinsic the console shim and the describers could consult, the pollution matrix
replaces it (a method or a value with a function that throws, and with one that returns a
forged string; a getter likewise) and checks that the console text, the value's preview and
json, and the description of a thrown value are exactly what a sandbox nobody polluted gives
for the same values: in the evaluation that polluted, and in a later one. The expected output
is never written down here: it is the unpolluted sandbox's.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from sandbox import Sandbox
from sandbox.outcome import Outcome

# Built before any pollution (the probes' own construction may use what gets polluted: the
# Map constructor calls `set`, array literals nothing): a value of every kind the describers
# render, an error with properties, and a thrown plain object.
BUILD = (
    "var V = { b: 2, 'q-k': \"it's\", s: 'a\\nb\\x01\\x7f\\\\', both: `'\"`, arr: [1, , 3, 'x'],"
    " sparse: [, , 5], m: new Map([['k', { a: 'x' }]]), set: new Set([1, 2]), d: new Date(0),"
    " r: /ab+c/gi, f: function foo() {}, g: function* gen() {}, af: async () => 1, k: class K {},"
    " n: null, u: undefined, nested: { deep: { deeper: { deepest: 1 } } }, e: new RangeError('bad'),"
    " ta: new Uint8Array(3), nul: Object.create(null), neg: -0, num: new Number(4), lone: '\\ud800',"
    " [Symbol('sk')]: 1, gen: (function* () {})(), math: Math, long: 'y'.repeat(100) };"
    " V.arr.extra = 1; V.self = V;"
    " var J = { b: 2, d: new Date(0), arr: [1, , 3], s: 'q\"\\n', num: new Number(4), str: new String('s'),"
    " inner: { x: [true, false, null, 1.5] }, skip: undefined, fn() {} };"
    " var E = new TypeError('bad thing'); E.extra = { a: 1 };"
    " var T = { b: 2, list: [1, 2] }; var S = Symbol('t');"
)
PROBES = {
    "value": (
        "console.log(V); console.log('%s|%o|%j|%d|%i', 'x', V.arr, J, 42, 4.5);"
        " console.group('g'); console.log('a\\nb', [1, 2]); console.groupEnd();"
        " console.log('top', V.s, S, 10n, V.lone); console.dir(V.m); console.log(J); V"
    ),
    "json": "J",
    "error": "throw E",
    "plain": "throw T",
    "error_result": "E",
}

POLLUTERS = {
    "throws": "function () { throw new Error('polluted') }",
    "forges": "function () { return 'FORGED' }",
}

# (target expression, key expression, "value" | "getter")
INTRINSICS: list[tuple[str, str, str]] = []


def _add(target: str, keys: list[str], how: str = "value") -> None:
    INTRINSICS.extend((target, k, how) for k in keys)


_add("String.prototype", ["'replace'", "'replaceAll'", "'split'", "'slice'", "'substring'", "'indexOf'",
                          "'lastIndexOf'", "'charCodeAt'", "'codePointAt'", "'charAt'", "'at'", "'repeat'",
                          "'padStart'", "'padEnd'", "'toString'", "'valueOf'", "'toWellFormed'",
                          "'isWellFormed'", "'concat'", "'trim'", "'startsWith'", "'includes'", "'match'",
                          "'normalize'", "Symbol.iterator"])
_add("RegExp.prototype", ["'exec'", "'test'", "'toString'", "'compile'", "Symbol.replace", "Symbol.split",
                          "Symbol.match", "Symbol.matchAll", "Symbol.search"])
_add("RegExp.prototype", ["'flags'", "'global'", "'unicode'", "'unicodeSets'", "'sticky'", "'ignoreCase'",
                          "'multiline'", "'dotAll'", "'hasIndices'", "'source'", "'lastIndex'"], "getter")
_add("RegExp", ["Symbol.species"], "getter")
_add("Array.prototype", ["'join'", "'push'", "'pop'", "'slice'", "'splice'", "'map'", "'forEach'",
                         "'filter'", "'indexOf'", "'includes'", "'concat'", "'toString'", "'keys'",
                         "'values'", "'entries'", "'reduce'", "'fill'", "Symbol.iterator"])
_add("Array.prototype", ["'0'", "'1'", "'2'"], "getter")
_add("Array", ["'isArray'", "'from'", "'of'"])
_add("Array", ["Symbol.species"], "getter")
_add("Object", ["'keys'", "'values'", "'entries'", "'getOwnPropertyNames'", "'getOwnPropertyDescriptor'",
                "'getOwnPropertyDescriptors'", "'getOwnPropertySymbols'", "'getPrototypeOf'",
                "'setPrototypeOf'", "'defineProperty'", "'defineProperties'", "'freeze'", "'isFrozen'",
                "'is'", "'assign'", "'create'", "'hasOwn'"])
_add("Object.prototype", ["'toString'", "'hasOwnProperty'", "'propertyIsEnumerable'", "'valueOf'",
                          "'toLocaleString'", "'isPrototypeOf'", "'constructor'", "'toJSON'",
                          "Symbol.toPrimitive", "'value'", "'get'", "'set'", "'writable'", "'enumerable'",
                          "'configurable'", "'done'", "'next'", "'then'", "'0'", "'length'", "'name'",
                          "'message'", "'stack'", "'source'", "'flags'"])
_add("Object.prototype", ["Symbol.toStringTag", "'value'", "'get'", "'done'", "'then'", "'0'", "'toJSON'",
                          "'constructor'", "'__proto__'", "Symbol.iterator"], "getter")
_add("JSON", ["'stringify'", "'parse'"])
_add("JSON", ["Symbol.toStringTag"], "getter")
_add("Math", ["'floor'", "'trunc'", "'min'", "'max'", "'abs'"])
_add("Map.prototype", ["'get'", "'set'", "'has'", "'delete'", "'entries'", "'forEach'", "'keys'",
                       "'values'", "Symbol.iterator"])
_add("Map.prototype", ["'size'", "Symbol.toStringTag"], "getter")
_add("Object.getPrototypeOf(new Map().entries())", ["'next'", "Symbol.iterator"])
_add("Set.prototype", ["'add'", "'has'", "'delete'", "'entries'", "'forEach'", "'keys'", "'values'",
                       "Symbol.iterator"])
_add("Set.prototype", ["'size'", "Symbol.toStringTag"], "getter")
_add("Object.getPrototypeOf(new Set().values())", ["'next'", "Symbol.iterator"])
_add("Object.getPrototypeOf([][Symbol.iterator]())", ["'next'", "Symbol.iterator"])
_add("Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()))", ["Symbol.iterator", "'next'",
                                                                            "'map'", "'toArray'"])
_add("Object.getPrototypeOf(''[Symbol.iterator]())", ["'next'"])
_add("Iterator.prototype", ["'forEach'", "'reduce'"])
_add("Symbol.prototype", ["'toString'", "'valueOf'", "Symbol.toPrimitive"])
_add("Symbol.prototype", ["'description'", "Symbol.toStringTag"], "getter")
_add("Reflect", ["'ownKeys'", "'apply'", "'getPrototypeOf'", "'defineProperty'", "'get'", "'has'",
                 "'getOwnPropertyDescriptor'", "'construct'", "'set'"])
# Not polluted, because the language forbids it: the well-known symbols (Symbol.iterator...),
# Function.prototype[Symbol.hasInstance] and Array.prototype.length are not configurable.
_add("Function.prototype", ["'call'", "'apply'", "'bind'", "'toString'"])
_add("Function.prototype", ["'name'", "'length'"], "getter")
_add("Error.prototype", ["'toString'"])
_add("Error.prototype", ["Symbol.toStringTag"], "getter")
_add("Error", ["'isError'", "'captureStackTrace'", "'prepareStackTrace'"])
_add("Number.prototype", ["'toString'", "'toFixed'", "'valueOf'", "'toLocaleString'", "'toPrecision'"])
_add("Number", ["'isInteger'", "'isFinite'", "'isNaN'"])
_add("BigInt.prototype", ["'toString'", "'valueOf'", "'toJSON'", "'toLocaleString'"])
_add("Boolean.prototype", ["'toString'", "'valueOf'"])
_add("Date.prototype", ["'toISOString'", "'toJSON'", "'getTime'", "'toString'", "'valueOf'",
                        "Symbol.toPrimitive"])
_add("Date", ["'now'"])
_add("Function.prototype", ["Symbol.toStringTag"], "getter")
_add("Object.getPrototypeOf(async function () {})", ["Symbol.toStringTag"], "getter")
_add("Object.getPrototypeOf(function* () {})", ["Symbol.toStringTag"], "getter")
_add("Object.getPrototypeOf(Uint8Array.prototype)", ["Symbol.iterator", "'join'", "'slice'"])
_add("Object.getPrototypeOf(Uint8Array.prototype)", ["'length'", "Symbol.toStringTag"], "getter")
_add("ArrayBuffer.prototype", ["'slice'"])
_add("ArrayBuffer.prototype", ["'byteLength'"], "getter")
_add("Promise.prototype", ["'then'"])
_add("Promise.prototype", ["Symbol.toStringTag"], "getter")
_add("globalThis", ["'String'", "'Error'", "'TypeError'", "'Object'", "'Array'", "'JSON'", "'Map'",
                    "'Symbol'", "'Reflect'", "'RegExp'"])


def polluting(target: str, key: str, how: str, fn: str) -> str:
    """One line of JS that pollutes and evaluates to whether it took effect."""
    desc = "{ get: f, set() {}, configurable: true }" if how == "getter" else \
        "{ value: f, writable: true, configurable: true }"
    return (f"(() => {{ const dp = Object.defineProperty, gd = Object.getOwnPropertyDescriptor,"
            f" ho = Function.prototype.call.bind(Object.prototype.hasOwnProperty);"
            f" const t = {target}, k = {key}, f = {fn}; try {{ dp(t, k, {desc}); }} catch (e) {{ return false; }}"
            f" const d = gd(t, k); return ho(d, 'get') ? d.get === f : d.value === f; }})()")


def summary(out: Outcome) -> dict[str, Any]:
    """Everything a client sees of an evaluation, but timings."""
    err = out.error
    return {
        "status": out.status,
        "value": out.value,
        "error": err and {"kind": err.kind, "name": err.name, "message": err.message, "stack": err.stack},
        "events": [(e.type, e.payload) for e in out.events],
        "state": out.session_state.to_dict(),
    }


@cache
def baseline(probe: str, later: bool) -> dict[str, Any]:
    with Sandbox() as sb:
        if later:
            assert sb.eval(f"{BUILD}\nvar polluted = 0;\npolluted").ok
            return summary(sb.eval(PROBES[probe]))
        return summary(sb.eval(f"{BUILD}\n0;\n{PROBES[probe]}"))


CASES = [
    pytest.param(target, key, how, polluter, id=f"{target}[{key}]:{how}:{polluter}")
    for target, key, how in INTRINSICS for polluter in POLLUTERS
]


@pytest.mark.parametrize(("target", "key", "how", "polluter"), CASES)
def test_pollution_changes_nothing_the_host_sees(target: str, key: str, how: str, polluter: str) -> None:
    pollution = polluting(target, key, how, POLLUTERS[polluter])
    for probe in PROBES:
        with Sandbox() as sb:
            same = summary(sb.eval(f"{BUILD}\n{pollution};\n{PROBES[probe]}"))
            assert same == baseline(probe, False), f"{probe}, polluted in the same evaluation"
        with Sandbox() as sb:
            first = sb.eval(f"{BUILD}\nvar polluted = {pollution};\npolluted")
            assert first.status == "ok", first.error
            # The matrix compares polluted sandboxes, not untouched ones.
            assert first.value["json"] is True
            later = summary(sb.eval(PROBES[probe]))
            assert later == baseline(probe, True), f"{probe}, polluted in an earlier evaluation"
            # Still polluted (the pollution took effect and stayed), and still described.
            again = sb.eval(PROBES["json"])
            assert summary(again) == baseline("json", True)


def test_regexp_symbol_replace_set_in_one_evaluation_poisons_nothing_later() -> None:
    with Sandbox() as sb:
        assert sb.eval("RegExp.prototype[Symbol.replace] = function () {}; 1").ok
        for code in ["({ a: 1 })", "throw new Error('x')", "console.log({ b: 2 }); 2"]:
            out = sb.eval(code)
            assert out.status in ("ok", "error"), out.error
            assert out.session_state.state == "kept"
        out = sb.eval("({ b: 2 })")
        assert out.value == {"type": "object", "preview": "{ b: 2 }", "json": {"b": 2}}


# ----- what belongs to the script is honoured, and may fail, never the host ---------------------

HOSTILE = [
    "Object.defineProperty(Object.prototype, 'then', { get() { throw 1 } }); ({ a: 1 })",
    "Object.defineProperty(Error.prototype, 'stack', { get() { throw 1 } });"
    " Object.defineProperty(Error.prototype, 'message', { get() { throw 2 } });"
    " Object.defineProperty(Error.prototype, 'name', { get() { throw 3 } }); Object.create(Error.prototype)",
    "new Proxy({ a: 1 }, { ownKeys() { throw 1 }, get() { throw 2 } })",
    "new Proxy([1, 2], { get(t, k) { return k === 'length' ? 1e9 : 7 } })",
    "new Proxy(function f() {}, { get() { throw 1 }, getOwnPropertyDescriptor() { throw 2 } })",
    "(() => { const r = Proxy.revocable({}, {}); r.revoke(); return r.proxy })()",
    "(() => { const r = Proxy.revocable([], {}); r.revoke(); return { inner: r.proxy } })()",
    "({ [Symbol.toStringTag]: 'Map', a: 1 })",
    "({ get [Symbol.toStringTag]() { throw 1 }, a: 1 })",
    "class Fake { get [Symbol.toStringTag]() { return 'Set' } }; new Fake()",
    "Object.create(Map.prototype)",
    "Object.create(Date.prototype)",
    "Object.setPrototypeOf(new Map([[1, 2]]), null)",
    "({ toJSON() { throw new Error('mine') } })",
    "({ get x() { throw 1 }, y: 2 })",
    "Object.prototype.toJSON = function () { throw 1 }; ({ a: 1 })",
    "Object.defineProperty(Object.prototype, 'toJSON', { get() { throw 1 } }); [{ a: 1 }]",
    "Error.prepareStackTrace = function () { throw 1 }; console.trace('t'); new Error('e')",
    "Object.defineProperty(Object.prototype, 'constructor', { get() { throw 1 } }); ({ a: new (class A {})() })",
    "Error.prototype.toString = () => ({}); ({ e: new Error('x') })",
    "const e = new Error('x'); e.name = { toString() { throw 1 } }; e",
    "const m = new Error('x'); Object.defineProperty(m, 'stack', { get() { throw 1 } }); throw m",
    "throw new Proxy({}, { getPrototypeOf() { throw 1 }, ownKeys() { throw 2 } })",
    "throw (() => { const r = Proxy.revocable(new Error('x'), {}); r.revoke(); return r.proxy })()",
]


@pytest.mark.parametrize("code", HOSTILE)
def test_hostile_values_always_get_a_well_formed_description(code: str) -> None:
    with Sandbox() as sb:
        out = sb.eval(code)
        assert out.status in ("ok", "error"), (out.status, out.error)
        assert out.session_state.state == "kept"
        if out.status == "ok":
            assert isinstance(out.value["type"], str) and isinstance(out.value["preview"], str)
        else:
            assert out.error.kind == "exception" and isinstance(out.error.message, str)
        # The session goes on describing.
        after = sb.eval("[{ b: 2 }]")
        assert after.value["json"] == [{"b": 2}]


def test_spoofed_tags_do_not_make_an_object_a_map() -> None:
    with Sandbox() as sb:
        out = sb.eval("({ [Symbol.toStringTag]: 'Map', a: 1 })")
        assert out.value["type"] == "object"
        assert out.value["preview"] == "Object [Map] { a: 1, [Symbol(Symbol.toStringTag)]: 'Map' }"
        out = sb.eval("Object.create(Date.prototype)")
        assert (out.value["type"], out.value["preview"]) == ("object", "Date {}")


def test_a_toJSON_of_the_scripts_own_is_honoured_one_planted_on_a_builtin_is_not() -> None:
    with Sandbox() as sb:
        assert sb.eval("({ toJSON() { return 5 } })").value["json"] == 5
        own = sb.eval("class P { toJSON(k) { return 'p' + k } }; [new P(), { q: new P() }]")
        assert own.value["json"] == ["p0", {"q": "pq"}]
        assert sb.eval("Object.prototype.toJSON = () => 'FORGED'; ({ a: 1 })").value["json"] == {"a": 1}
        date = sb.eval("Date.prototype.toJSON = () => 'FORGED'; new Date(0)")
        assert date.value["json"] == "1970-01-01T00:00:00.000Z"
        # A script's own toJSON that throws: JSON.stringify would throw, so there is no json.
        out = sb.eval("({ toJSON() { throw new Error('mine') } })")
        assert out.status == "ok" and "json" not in out.value and "json_omitted" not in out.value
