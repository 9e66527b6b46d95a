"""Property: the sandbox computes what native QuickJS computes, or stops at the right limit.

Programs come from a small grammar: integer arithmetic on three variables, `for` loops with
random bounds, array allocations, `console.log` calls (narrow, wide, floods), conditional
`throw`s, and at most one statement that blows a limit on purpose (an endless loop, a huge
allocation). Each program runs

* in native QuickJS (PyPI `quickjs`), with a console that records its lines, and with the
  limit-blowing statement replaced by a sentinel throw: the reference run;
* in the sandbox, under small per-call limits drawn for the example.

The expected sandbox outcome is derived from the reference run: walk its console lines in order
and apply the sandbox's caps (the line that would cross `max_events`, then `max_output_kb`,
stops the script); otherwise, if the sentinel was reached, the statement's limit stops it;
otherwise the value or the thrown error must be the native one. After every example the same
sandbox must still answer correctly and keep its state.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pytest
import quickjs
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sandbox import Limits, Outcome, Sandbox

MEM_MB = 32
VARS = ("a", "b", "c")
MOD = 65521
SENTINEL = "__LIMIT_REACHED__"

# Native QuickJS gets a console that formats numbers and strings as the sandbox's does.
NATIVE_PRELUDE = """
var __logs = [];
var console = { log: function () {
  var parts = [];
  for (var i = 0; i < arguments.length; i++) {
    var x = arguments[i];
    parts.push(typeof x === 'number' && Object.is(x, -0) ? '-0' : String(x));
  }
  __logs.push(parts.join(' '));
} };
"""


@dataclass(frozen=True)
class Program:
    sandbox_source: str
    native_source: str
    heavy_kind: str | None  # the limit the heavy statement blows: cpu_limit | memory_limit


# ----- the grammar ---------------------------------------------------------------------------

def _literal(n: int) -> str:
    return str(n) if n >= 0 else f"({n})"


@st.composite
def expressions(draw: st.DrawFn, names: tuple[str, ...], depth: int = 0) -> str:
    if depth >= 2 or draw(st.integers(0, 2)) == 0:
        return draw(st.one_of(st.integers(-1000, 1000).map(_literal), st.sampled_from(names)))
    op = draw(st.sampled_from(["+", "-", "*", "%"]))
    left = draw(expressions(names, depth + 1))
    if op == "%":
        right = _literal(draw(st.integers(1, 97)) * draw(st.sampled_from([1, -1])))
    else:
        right = draw(expressions(names, depth + 1))
    return f"({left} {op} {right})"


@st.composite
def assignments(draw: st.DrawFn, names: tuple[str, ...]) -> str:
    target = draw(st.sampled_from(VARS))
    return f"{target} = {draw(expressions(names))} % {MOD};"


@st.composite
def logs(draw: st.DrawFn, names: tuple[str, ...]) -> str:
    tag = draw(st.integers(0, 99))
    shape = draw(st.integers(0, 3))
    if shape == 0:
        # Up to 1500 characters: lines above ~512 are string ropes inside QuickJS.
        width = draw(st.integers(0, 1500))
        return f"console.log('w'.repeat({width}), {draw(st.sampled_from(names))});"
    if shape == 1:
        return f"console.log({draw(expressions(names))});"
    return f"console.log('L{tag}', {draw(st.sampled_from(names))});"


@st.composite
def throws(draw: st.DrawFn, names: tuple[str, ...]) -> str:
    var = draw(st.sampled_from(names))
    cmp = draw(st.sampled_from(["<", ">", "==="]))
    bound = _literal(draw(st.integers(-MOD, MOD)))
    error = draw(st.sampled_from(["Error", "RangeError", "TypeError"]))
    return f"if ({var} {cmp} {bound}) throw new {error}('e' + {var});"


@st.composite
def loops(draw: st.DrawFn, names: tuple[str, ...], depth: int = 0) -> str:
    var = ("i", "j")[depth]
    bound = draw(st.integers(0, 120))
    inner = names + (var,)
    body_parts = [assignments(inner), logs(inner), throws(inner)]
    if depth == 0:
        body_parts.append(loops(inner, depth + 1))
    body = " ".join(draw(st.lists(st.one_of(*body_parts), min_size=1, max_size=3)))
    return f"for (let {var} = 0; {var} < {bound}; {var}++) {{ {body} }}"


@st.composite
def allocations(draw: st.DrawFn) -> str:
    size = draw(st.integers(0, 3000))
    fill = draw(expressions(VARS))
    var = draw(st.sampled_from(VARS))
    return (f"arr = new Array({size}).fill({fill} % {MOD}); "
            f"{var} = ({var} + arr.length + arr.reduce((x, y) => (x + y) % {MOD}, 0)) % {MOD};")


@st.composite
def floods(draw: st.DrawFn) -> str:
    n = draw(st.integers(0, 80))
    pad = draw(st.sampled_from([0, 0, 10, 100, 300]))
    return f"for (let k = 0; k < {n}; k++) console.log('f' + k + '.'.repeat({pad}));"


HEAVY = {
    "cpu_limit": "for (let h = 0; h < 1e12; h++) { a = (a + h) % 65521; }",
    "memory_limit": "arr = new ArrayBuffer({size});",
}


@st.composite
def programs(draw: st.DrawFn) -> Program:
    statement = st.one_of(assignments(VARS), loops(VARS), allocations(), logs(VARS),
                          throws(VARS), floods())
    stmts = draw(st.lists(statement, min_size=0, max_size=7))
    heavy_kind = draw(st.sampled_from([None, None, None, "cpu_limit", "memory_limit"]))
    native_stmts = list(stmts)
    if heavy_kind is not None:
        at = draw(st.integers(0, len(stmts)))
        heavy = HEAVY[heavy_kind]
        if heavy_kind == "memory_limit":
            heavy = heavy.format(size=draw(st.integers(48 << 20, 1 << 30)))
        stmts.insert(at, heavy)
        native_stmts.insert(at, f"throw new Error('{SENTINEL}');")
    inits = [_literal(draw(st.integers(-MOD, MOD))) for _ in VARS]
    result = draw(st.sampled_from(["a", "[a, b, c]", "a + b * c", "'s' + a", "arr.length"]))

    def wrap(body: list[str]) -> str:
        return ("(() => { " + f"let a = {inits[0]}, b = {inits[1]}, c = {inits[2]}; let arr = []; "
                + " ".join(body) + f" return {result}; }})()")

    return Program(wrap(stmts), wrap(native_stmts), heavy_kind)


@st.composite
def limits(draw: st.DrawFn) -> Limits:
    return Limits(cpu_ms=draw(st.integers(40, 80)), wall_ms=3000, mem_mb=MEM_MB,
                  max_events=draw(st.integers(1, 60)), max_output_kb=draw(st.integers(1, 3)))


# ----- the reference run and the expected outcome --------------------------------------------

@dataclass(frozen=True)
class Expected:
    kind: str  # value | throw | <limit kind>
    payload: Any
    console: list[str]


def native_run(program: Program) -> tuple[str, Any, list[str]]:
    ctx = quickjs.Context()
    ctx.eval(NATIVE_PRELUDE)
    try:
        result = ctx.eval(program.native_source)
        kind, payload = "value", result.json() if isinstance(result, quickjs.Object) else result
        if isinstance(result, quickjs.Object):
            payload = json.loads(payload)
    except quickjs.JSException as exc:
        first = str(exc).split("\n", 1)[0]
        kind, payload = ("sentinel", None) if SENTINEL in first else ("throw", first)
    lines = json.loads(ctx.eval("JSON.stringify(__logs)"))
    return kind, payload, lines


def expected_outcome(program: Program, lim: Limits) -> Expected:
    kind, payload, lines = native_run(program)
    size = 0
    for n, line in enumerate(lines):  # n: the events before this line
        line_bytes = len(line.encode())
        if n + 1 > lim.max_events:
            return Expected("event_limit", None, lines[:n])
        if size + line_bytes > lim.max_output_kb * 1024:
            return Expected("output_limit", None, lines[:n])
        size += line_bytes
    if kind == "sentinel":
        assert program.heavy_kind is not None
        return Expected(program.heavy_kind, None, lines)
    return Expected(kind, payload, lines)


STATUS_OF = {"event_limit": "limit_exceeded", "output_limit": "limit_exceeded",
             "memory_limit": "limit_exceeded", "cpu_limit": "timeout"}


def check(out: Outcome, exp: Expected, lim: Limits, source: str) -> None:
    info = (f"\nprogram: {source}\nexpected: {exp.kind} {exp.payload!r}\n"
            f"got: {out.status} value={out.value} error={out.error}")
    console = [e.payload["text"] for e in out.events if e.type == "console"]
    assert console == exp.console, f"console lines differ{info}\nsandbox console: {console}"
    if exp.kind == "value":
        assert out.status == "ok", info
        native = exp.payload
        if isinstance(native, float) and native == 0 and math.copysign(1, native) < 0:
            assert out.value["preview"] == "-0" and "json" not in out.value, info
        else:
            assert "json" in out.value, info
            assert out.value["json"] == native, info
    elif exp.kind == "throw":
        assert out.status == "error" and out.error.kind == "exception", info
        assert f"{out.error.name}: {out.error.message}" == exp.payload, info
    else:
        assert out.status == STATUS_OF[exp.kind], info
        assert out.error.kind == exp.kind, info
    m = out.metrics
    assert m.peak_memory_bytes <= MEM_MB * 1024 * 1024, info
    if exp.kind == "cpu_limit":
        # CPU time does not advance while the thread is descheduled, and the heavy statement is
        # a JS loop that reaches the interrupt check every ~10,000 operations: tight holds.
        assert m.cpu_ms <= lim.cpu_ms + 50, info
    # No program outlives the wall limit; which limit stopped it is judged by the kind above. A
    # descheduled host overshoots a deadline by however long it was away.
    # generous: these programs stop within the 80 ms CPU limit; only a hang guard
    assert m.wall_ms <= lim.wall_ms + 2_000, info


# ----- the property ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prop_sb():
    with Sandbox(limits=Limits(cpu_ms=2000, wall_ms=5000, mem_mb=MEM_MB)) as sb:
        out = sb.eval("globalThis.__probe = 'still-here'; 1")
        assert out.status == "ok"
        sb.checkpoint("probe")  # what a trap rolls back to
        yield sb


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(program=programs(), lim=limits())
def test_sandbox_agrees_with_native_quickjs_or_stops_at_the_right_limit(
        prop_sb: Sandbox, program: Program, lim: Limits) -> None:
    exp = expected_outcome(program, lim)
    event(f"expected {exp.kind}")
    out = prop_sb.eval(program.sandbox_source, limits=lim)
    check(out, exp, lim, program.sandbox_source)
    # The sandbox goes on: a follow-up answers, and the state from before survived.
    follow = prop_sb.eval("6 * 7 + (typeof arr === 'undefined' ? 0 : 1000)")
    assert follow.status == "ok" and follow.value["json"] == 42, follow
    probe = prop_sb.eval("globalThis.__probe")
    assert probe.status == "ok" and probe.value["json"] == "still-here", probe


def test_grammar_produces_every_outcome() -> None:
    """The generator is not vacuous: over a fixed seed it yields values, throws and each limit."""
    seen: set[str] = set()

    @settings(max_examples=400, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(program=programs(), lim=limits())
    def collect(program: Program, lim: Limits) -> None:
        seen.add(expected_outcome(program, lim).kind)

    collect()
    assert seen >= {"value", "throw", "event_limit", "output_limit", "cpu_limit", "memory_limit"}, seen
