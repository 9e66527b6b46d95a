"""The adversarial corpus: hostile scripts, each with the outcome the engine must give.

Every case is data: the script, the limits it runs under, the expected status and error kind,
and where it matters the expected value, error message or console output. `test_corpus.py`
runs each case in a fresh sandbox and once more, in order, in one shared sandbox, and checks
the invariants every evaluation must keep whatever the script did (see `check_outcome`).

Limits are small so the suite stays fast. CPU cases get a wall limit five times their CPU
limit, so the CPU limit is the one that stops them even on a loaded machine; wall-clock cases
get a CPU limit far above their wall limit. Memory is the same for every case (mem_mb is fixed
when a sandbox is created).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox import Limits, Outcome, Sandbox
from sandbox.rejections import MAX_HELD_REJECTIONS

MEM_MB = 32
MEM_CAP = MEM_MB * 1024 * 1024

# The sandbox's own limits; every case passes its own per-call limits.
BASE = Limits(cpu_ms=1000, wall_ms=2000, mem_mb=MEM_MB, max_events=1000, max_output_kb=64)
# The wall limit of the CPU cases is only a backstop: their CPU limit must win even when the
# evaluating thread gets a tenth of a core on a loaded machine (200 ms of CPU in 10 s of wall).
CPU = Limits(cpu_ms=200, wall_ms=10_000, mem_mb=MEM_MB, max_events=1000, max_output_kb=64)
WALL = Limits(cpu_ms=2000, wall_ms=300, mem_mb=MEM_MB, max_events=1000, max_output_kb=64)
MEM = Limits(cpu_ms=1000, wall_ms=2000, mem_mb=MEM_MB, max_events=1000, max_output_kb=64)
STACK = BASE

# A CPU limit stops the script within this much CPU time past the limit. CPU time does not
# advance while the thread is descheduled; the slack covers native calls (a regex, a repeat)
# that are interrupted on the engine ticker's 5 ms beat, which a loaded host can delay. CPU
# cases have a wall limit fifty times their CPU limit, so a late CPU stop is still seen here.
CPU_SLACK_MS = 250
# No evaluation outlives its wall limit by more than this (the engine's own wall figure). A
# wall deadline is checked every few ms, but a descheduled host overshoots it by however long
# it was away, so this is a hang guard; which limit stopped a script is judged by its kind.
# It stays below the 2000 ms CPU limit of the wall-clock cases: a wall limit that never fired
# would let them run to it.
WALL_SLACK_MS = 1000
# CPU time of the caller's whole `eval` call (stop + rollback or checkpoint, on whatever
# thread) over the wall limit: the work after the stop is bounded without reading a wall clock.
CALL_SLACK_MS = 250
# The caller's wall clock over the wall limit, as a hang guard only.
CALL_WALL_SLACK_MS = 5000


@dataclass(frozen=True)
class CallTime:
    """What one `eval` call cost the caller, in ms: wall clock and the process's CPU time."""

    wall_ms: float
    cpu_ms: float

LIMIT_NAME_OF_KIND = {
    "timeout": "wall_ms",
    "cpu_limit": "cpu_ms",
    "memory_limit": "mem_mb",
    "stack_overflow": "stack",
    "output_limit": "max_output_kb",
    "event_limit": "max_events",
}
TERMINAL_OF_STATUS = {
    "ok": "value",
    "error": "exception",
    "timeout": "limit",
    "limit_exceeded": "limit",
}
CANARY = "globalThis.__canary = 'alive-' + 6 * 7; globalThis.__canary"

_ANY = object()


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    code: str
    status: str
    kind: str | None = None
    limits: Limits = CPU
    mode: str = "script"  # script | module
    value: Any = _ANY  # expected value["json"]
    preview: str | None = None
    json_omitted: str | None = None  # expected reason the value has no json
    error_name: str | None = None
    message_contains: str | None = None
    console: tuple[str, ...] | None = None  # exact console texts, in order
    state: str | None = None  # "kept" | "rolled_back" | None (either is acceptable)
    # False: the case deliberately changes the global environment (pollution, fake clocks) or
    # keeps the heap full on purpose, so it cannot share a sandbox with the cases after it.
    shareable: bool = True
    extra: Callable[[Outcome], None] | None = field(default=None, compare=False)
    note: str = ""


def _time_stop(kind: str) -> dict[str, Any]:
    return {"status": "timeout", "kind": kind}


def _limit(kind: str) -> dict[str, Any]:
    return {"status": "limit_exceeded", "kind": kind}


def _error(name: str | None = None, contains: str | None = None) -> dict[str, Any]:
    return {"status": "error", "kind": "exception", "error_name": name, "message_contains": contains}


def _ok(value: Any = _ANY, preview: str | None = None) -> dict[str, Any]:
    return {"status": "ok", "value": value, "preview": preview}


# ----- extra checks ------------------------------------------------------------------------

def console_texts(out: Outcome) -> list[str]:
    return [e.payload["text"] for e in out.events if e.type == "console"]


def _one_truncated_line(out: Outcome) -> None:
    texts = console_texts(out)
    assert len(texts) == 1, f"expected the giant line as one (truncated) console event, got {len(texts)}"
    assert texts[0].startswith("x" * 1000)
    assert len(texts[0].encode()) <= CPU.max_output_kb * 1024


def _exactly_max_events(out: Outcome) -> None:
    texts = console_texts(out)
    assert len(texts) == CPU.max_events, f"{len(texts)} console events, cap {CPU.max_events}"


def _output_near_cap(out: Outcome) -> None:
    total = sum(len(t.encode()) for t in console_texts(out))
    cap = CPU.max_output_kb * 1024
    assert total <= cap
    # Every line that fitted was delivered: the stop came at the line crossing the cap.
    assert total > cap - 10_000, f"only {total} bytes delivered before the output limit"


def _unhandled_counted(out: Outcome) -> None:
    # Stopped: nothing is described, all of them are counted in one note.
    notes = [e.payload["message"] for e in out.events if e.type == "system"]
    assert len(notes) == 1 and "rejected without a handler" in notes[0], notes


def _unhandled_described(out: Outcome) -> None:
    notes = [e.payload["message"] for e in out.events if e.type == "system"]
    assert notes[:2] == ["Uncaught (in promise) 0", "Uncaught (in promise) 1"], notes[:2]
    assert len(notes) == MAX_HELD_REJECTIONS + 1
    assert notes[-1].startswith(f"{20_000 - MAX_HELD_REJECTIONS} promise(s) rejected"), notes[-1]


def _preview_bounded(out: Outcome) -> None:
    assert out.value is not None
    assert out.value["preview"].startswith("'rrrr")
    assert len(out.value["preview"]) <= 10_000


def _message_prefix(prefix: str) -> Callable[[Outcome], None]:
    def check(out: Outcome) -> None:
        assert out.error is not None
        assert out.error.message.startswith(prefix), out.error.message[:200]
        assert len(out.error.message) <= 100_000
    return check


# ----- the corpus ---------------------------------------------------------------------------

_LOCALS_3000 = (
    "var src = 'function g(n){';"
    "for (let i = 0; i < 3000; i++) src += 'var v' + i + ' = n + ' + i + ';';"
    "src += 'return n <= 0 ? 0 : g(n - 1) + v1 }';"
    "(0, eval)(src); g(100000)"
)
_LOCALS_100 = (
    "var src = 'function h(n){';"
    "for (let i = 0; i < 100; i++) src += 'var w' + i + ' = n + ' + i + ';';"
    "src += 'return h(n + 1) + w1 }';"
    "(0, eval)(src); h(0)"
)

CASES: list[Case] = [
    # ----- CPU: tight loops, loops in promise jobs, catastrophic regexes --------------------
    Case("while_true", "cpu", "while (true) {}", **_time_stop("cpu_limit"), state="kept"),
    Case("for_ever", "cpu", "for (;;) {}", **_time_stop("cpu_limit"), state="kept"),
    Case("do_while", "cpu", "let di = 0; do { di++ } while (di > 0 || true)", **_time_stop("cpu_limit"),
         state="kept"),
    Case("async_await_loop", "cpu", "(async () => { for (;;) { await null } })()",
         **_time_stop("cpu_limit")),
    Case("promise_then_recursion", "cpu",
         "function loop() { return Promise.resolve().then(loop) } loop()", **_time_stop("cpu_limit")),
    Case("queue_microtask_chain", "cpu", "(function f() { queueMicrotask(f) })(); 1",
         **_time_stop("cpu_limit")),
    Case("module_top_level_await_loop", "cpu", "for (;;) { await null }", mode="module",
         **_time_stop("cpu_limit")),
    Case("catastrophic_regex", "cpu", "/(a+)+$/.test('a'.repeat(40) + 'b')", **_time_stop("cpu_limit"),
         state="kept"),
    Case("catastrophic_regex_words", "cpu", r"/^(\w+\s?)*$/.test('word '.repeat(40) + '!')",
         **_time_stop("cpu_limit")),
    Case("generator_loop", "cpu", "function* g() { for (;;) yield 1 } for (const x of g()) {}",
         **_time_stop("cpu_limit"), state="kept"),
    Case("sort_comparator_loop", "cpu", "[3, 2, 1].sort(() => { for (;;) {} })",
         **_time_stop("cpu_limit"), state="kept"),
    Case("eval_loop", "cpu", "eval('for (;;) {}')", **_time_stop("cpu_limit"), state="kept"),
    Case("function_ctor_loop", "cpu", "new Function('while (1) {}')()", **_time_stop("cpu_limit"),
         state="kept"),
    Case("native_call_loop", "cpu", "for (;;) 'x'.repeat(1 << 20)", **_time_stop("cpu_limit"),
         note="each iteration is one long native call: interrupt checks are rare"),
    Case("arraybuffer_churn", "cpu", "for (;;) new ArrayBuffer(1 << 20)", **_time_stop("cpu_limit"),
         note="bulk memory work: fuel is burnt much faster than on a tight loop"),
    Case("typed_fill_loop", "cpu", "const tb = new Uint8Array(1 << 20); for (;;) tb.fill(1)",
         **_time_stop("cpu_limit")),
    # The host describes the result and the thrown value inside the guest, under the limits.
    Case("result_proxy_ownkeys_loop", "cpu", "new Proxy({}, { ownKeys() { for (;;) {} } })",
         **_time_stop("cpu_limit")),
    Case("result_tojson_loop", "cpu", "({ toJSON() { for (;;) {} } })", **_time_stop("cpu_limit")),
    Case("thrown_message_getter_loop", "cpu",
         "const me = new Error('x'); Object.defineProperty(me, 'message', { get() { for (;;) {} } }); throw me",
         **_time_stop("cpu_limit")),
    Case("thenable_result_loop", "cpu", "(async () => ({ then(r) { for (;;) {} } }))()",
         **_time_stop("cpu_limit")),
    Case("coercion_tostring_loop", "cpu", "'' + { toString() { for (;;) {} } }",
         **_time_stop("cpu_limit"), state="kept"),

    # ----- wall clock -------------------------------------------------------------------------
    Case("wall_while_true", "wall", "while (true) {}", limits=WALL, **_time_stop("timeout"),
         state="kept"),
    Case("wall_async_loop", "wall", "(async () => { for (;;) { await 0 } })()", limits=WALL,
         **_time_stop("timeout")),
    Case("wall_regex", "wall", "/(a|aa)+$/.test('a'.repeat(60) + 'b')", limits=WALL,
         **_time_stop("timeout")),

    # ----- tampering with the limits from inside ----------------------------------------------
    Case("fake_clocks_cpu", "tamper",
         "Date.now = () => 0; performance.now = () => 0; for (;;) {}", **_time_stop("cpu_limit"),
         shareable=False),
    Case("fake_clocks_wall", "tamper",
         "Date.now = () => 0; performance.now = () => 0; Date.prototype.getTime = () => 0; while (1) {}",
         limits=WALL, **_time_stop("timeout"), shareable=False),
    Case("catch_interrupt_and_loop", "tamper", "for (;;) { try { for (;;) {} } catch (e) {} }",
         **_time_stop("cpu_limit"), state="kept"),
    Case("finally_loop", "tamper", "try { while (true) {} } finally { while (true) {} }",
         **_time_stop("cpu_limit"), state="kept"),
    Case("finally_continue", "tamper", "for (;;) { try { for (;;) {} } finally { continue } }",
         **_time_stop("cpu_limit"), state="kept"),
    Case("finally_return", "tamper",
         "(function () { for (;;) { try { for (;;) {} } finally { return 5 } } })()",
         **_time_stop("cpu_limit"), state="kept"),
    Case("catch_oom_and_retry", "tamper",
         "let retries = 0; for (;;) { try { const a = []; for (;;) a.push(new ArrayBuffer(1 << 20)) }"
         " catch (e) { retries++ } }",
         **_time_stop("cpu_limit")),
    Case("catch_oom_report", "tamper",
         "let oomMessage; try { const a = []; for (;;) a.push(new ArrayBuffer(1 << 20)) }"
         " catch (e) { oomMessage = e.message } oomMessage",
         limits=MEM, **_ok("out of memory")),
    Case("catch_oom_allocate_again", "tamper",
         "var hold = []; try { for (;;) hold.push(new ArrayBuffer(1 << 20)) } catch (e) {} new ArrayBuffer(8 << 20)",
         limits=MEM, **_limit("memory_limit"), shareable=False),
    Case("catch_stack_overflow_and_loop", "tamper",
         "function f() { return f() + 1 } for (;;) { try { f() } catch (e) {} }",
         **_limit("stack_overflow"), state="rolled_back"),
    Case("catch_console_limit", "tamper", "for (;;) { try { console.log('x') } catch (e) {} }",
         **_limit("event_limit"), extra=_exactly_max_events),
    Case("console_replaced_by_loop", "tamper", "console.log = function () { for (;;) {} }; console.log('x')",
         **_time_stop("cpu_limit"), shareable=False),

    # ----- memory -------------------------------------------------------------------------
    Case("arraybuffer_2_31", "memory", "new ArrayBuffer(2 ** 31)", **_error("RangeError")),
    Case("arraybuffer_2_31_minus_1", "memory", "new ArrayBuffer(2 ** 31 - 1)", limits=MEM,
         **_limit("memory_limit")),
    Case("array_1e9_fill", "memory", "new Array(1e9).fill(0)", limits=MEM, **_limit("memory_limit")),
    Case("typed_array_64mb", "memory", "new Uint8Array(64 * 1024 * 1024)", limits=MEM,
         **_limit("memory_limit")),
    Case("resizable_buffer_1gb", "memory",
         "const rb = new ArrayBuffer(1, { maxByteLength: 2 ** 30 }); rb.resize(2 ** 30)", limits=MEM,
         **_limit("memory_limit")),
    Case("arraybuffer_bomb", "memory", "var bomb = []; for (;;) bomb.push(new ArrayBuffer(1 << 20))",
         limits=MEM, **_limit("memory_limit"), state="rolled_back", shareable=False,
         note="an uncaught memory limit rolls back: what the script allocated goes with it"),
    Case("many_small_objects_local", "memory",
         "(() => { const a = []; for (;;) a.push({ x: a.length }) })()", limits=MEM,
         **_limit("memory_limit")),
    Case("many_small_objects_global", "memory",
         "const objs = []; for (;;) objs.push({ x: objs.length })", limits=MEM,
         **_limit("memory_limit"), shareable=False,
         note="the heap stays full: the engine must still report memory_limit and recover"),
    Case("string_doubling", "memory", "let s = 'x'; for (;;) s += s", **_error(contains="too long")),
    Case("string_doubling_flattened", "memory", "let t = 'x'; for (;;) { t += t; t.indexOf('y') }",
         limits=MEM, **_limit("memory_limit")),
    Case("apply_huge_arguments", "memory", "Math.max.apply(null, new Array(5e6).fill(1))",
         limits=MEM, **_limit("memory_limit")),
    Case("class_chain", "memory",
         "let C = class {}; for (let i = 0; i < 1e6; i++) C = class extends C {}; new C()",
         limits=MEM, **_limit("memory_limit")),
    Case("rejection_flood", "cpu", "for (let i = 0; ; i++) Promise.reject(new Error('r' + i))",
         **_time_stop("cpu_limit"), state="kept",
         extra=lambda out: _unhandled_counted(out)),
    Case("rejection_flood_ends", "output", "for (let i = 0; i < 2e4; i++) Promise.reject(i); 'done'",
         **_ok("done"), extra=lambda out: _unhandled_described(out)),
    Case("microtask_flood", "memory",
         "(() => { for (let i = 0; i < 1e7; i++) queueMicrotask(() => {}); return 1 })()",
         limits=MEM, **_limit("memory_limit")),
    Case("huge_string_result", "memory", "'r'.repeat(4e6)", **_ok(), extra=_preview_bounded),

    # ----- stack --------------------------------------------------------------------------
    # With a CPU limit of a full second: building and walking 1e5 levels takes 170-230 ms of CPU
    # before the stack overflows, in C code that never polls, and the CPU backstop (25 ms past
    # the limit) must not be what ends these cases.
    Case("plain_recursion", "stack", "function f() { return f() + 1 } f()", limits=STACK, **_limit("stack_overflow"),
         state="rolled_back"),
    Case("recursion_in_promise_job", "stack",
         "function f() { return f() + 1 } Promise.resolve().then(f)", limits=STACK, **_limit("stack_overflow"),
         state="rolled_back"),
    Case("async_recursion", "stack", "async function f() { return await f() } f()",
         limits=STACK, **_limit("stack_overflow"), state="rolled_back"),
    Case("generator_delegation_recursion", "stack", "function* g() { yield* g() } [...g()]",
         limits=STACK, **_limit("stack_overflow"), state="rolled_back"),
    Case("json_parse_open_brackets", "stack", "JSON.parse('['.repeat(1e5))", limits=STACK, **_limit("stack_overflow"),
         state="rolled_back"),
    Case("json_parse_deep", "stack", "JSON.parse('['.repeat(1e5) + ']'.repeat(1e5))",
         limits=STACK, **_limit("stack_overflow"), state="rolled_back"),
    Case("json_stringify_deep", "stack",
         "let so = {}; for (let i = 0; i < 1e5; i++) so = { so }; JSON.stringify(so).length",
         limits=STACK, **_limit("stack_overflow"), state="rolled_back"),
    # Describing a result never recurses on the host's or the guest's stack: a value of any
    # depth is `ok`, its json left out with the reason (issue 11).
    Case("deep_result_value", "stack", "let d = []; for (let i = 0; i < 1e5; i++) d = [d]; d",
         "ok", limits=STACK, preview="[ [ [ [Array] ] ] ]", json_omitted="it is nested deeper than 64 levels",
         state="kept"),
    Case("deep_array_join", "stack", "let j = []; for (let i = 0; i < 1e5; i++) j = [j]; String(j).length",
         limits=STACK, **_limit("stack_overflow"), state="rolled_back"),
    Case("deep_source_nesting", "stack", "eval('('.repeat(1e5) + '1' + ')'.repeat(1e5))",
         limits=STACK, **_limit("stack_overflow"), state="rolled_back"),
    Case("many_locals_3000", "stack", _LOCALS_3000, limits=STACK, **_limit("stack_overflow"), state="rolled_back",
         note="each frame reserves its locals on the shadow stack"),
    Case("many_locals_100", "stack", _LOCALS_100, limits=STACK, **_limit("stack_overflow"), state="rolled_back"),
    Case("mutual_getters", "stack", "const mg = { get a() { return this.b }, get b() { return this.a } }; mg.a",
         limits=STACK, **_limit("stack_overflow"), state="rolled_back"),
    Case("tostring_recursion", "stack", "const tr = { toString() { return String(this) } }; String(tr)",
         limits=STACK, **_limit("stack_overflow"), state="rolled_back"),
    Case("valueof_recursion", "stack", "const vr = { valueOf() { return this * 2 } }; vr * 1",
         limits=STACK, **_limit("stack_overflow"), state="rolled_back"),
    Case("proxy_get_recursion", "stack", "const pr = new Proxy({}, { get(t, k, r) { return r[k] } }); pr.x",
         limits=STACK, **_limit("stack_overflow"), state="rolled_back"),
    Case("proxy_chain", "stack", "let po = {}; for (let i = 0; i < 1e5; i++) po = new Proxy(po, {}); po.x",
         limits=STACK, **_limit("stack_overflow"), state="rolled_back"),

    # ----- console floods and giant lines --------------------------------------------------------
    Case("console_flood", "output", "for (;;) console.log('x')", **_limit("event_limit"),
         state="kept", extra=_exactly_max_events),
    Case("console_flood_levels", "output",
         "const levels = ['log', 'info', 'warn', 'error', 'debug']; for (let i = 0; ; i++) console[levels[i % 5]](i)",
         **_limit("event_limit"), extra=_exactly_max_events),
    Case("print_flood_in_jobs", "output", "(async () => { for (;;) { await null; print('j') } })()",
         **_limit("event_limit"), extra=_exactly_max_events),
    Case("console_medium_lines", "output", "for (;;) console.log('y'.repeat(400))",
         **_limit("output_limit"), state="kept", extra=_output_near_cap),
    Case("console_long_lines", "output", "for (;;) console.log('z'.repeat(2000))",
         **_limit("output_limit"), extra=_output_near_cap,
         note="lines longer than ~512 characters are string ropes inside QuickJS"),
    Case("console_giant_line", "output", "console.log('x'.repeat(5e6))", **_ok(),
         extra=_one_truncated_line),
    Case("console_giant_line_many_args", "output",
         "console.log(...new Array(20).fill('x'.repeat(9000)))", **_limit("output_limit")),

    # ----- reaching for the host ---------------------------------------------------------------
    Case("import_qjs_os", "host", "import * as os from 'qjs:os'; export default os", mode="module",
         **_error(contains="qjs:os")),
    Case("import_qjs_std", "host", "import * as std from 'qjs:std'; export default std", mode="module",
         **_error(contains="qjs:std")),
    Case("import_bare_os", "host", "import * as os from 'os'; export default os", mode="module",
         **_error(contains="os")),
    Case("import_file", "host", "import x from '/etc/passwd'; export default x", mode="module",
         **_error(contains="/etc/passwd")),
    Case("dynamic_import_std", "host", "import('qjs:std')", **_error(contains="qjs:std")),
    Case("dynamic_import_in_module", "host", "const m = await import('qjs:os'); export default m",
         mode="module", **_error(contains="qjs:os")),
    Case("require_fs", "host", "require('fs')", **_error("ReferenceError", "require")),
    Case("process_exit", "host", "process.exit(1)", **_error("ReferenceError", "process")),
    Case("deno_read", "host", "Deno.readTextFileSync('/etc/passwd')", **_error("ReferenceError", "Deno")),
    Case("fetch_network", "host", "fetch('http://127.0.0.1/')", **_error("ReferenceError", "fetch")),
    Case("std_open", "host", "std.open('/etc/passwd', 'r')", **_error("ReferenceError", "std")),
    Case("os_exec", "host", "os.exec(['/bin/sh', '-c', 'id'])", **_error("ReferenceError", "os")),
    Case("script_args", "host", "scriptArgs", **_error("ReferenceError", "scriptArgs")),
    Case("gc_call", "host", "gc()", **_error("ReferenceError", "gc")),
    Case("load_script", "host", "__loadScript('/etc/passwd')", **_error("ReferenceError")),
    Case("global_via_constructor", "host",
         "const g1 = globalThis.constructor.constructor('return this')();"
         "['std', 'os', 'bjson', 'require', 'process', 'scriptArgs', 'gc'].map(k => typeof g1[k])",
         **_ok(["undefined"] * 7)),
    Case("global_via_function_ctor", "host",
         "const g2 = (function () {}).constructor('return this')(); g2 === globalThis && typeof g2.std",
         **_ok("undefined")),
    Case("global_via_indirect_eval", "host",
         "(0, eval)('typeof std + typeof os + typeof require + typeof process')",
         **_ok("undefined" * 4)),
    Case("global_via_error_stack", "host",
         "let found = []; Error.prepareStackTrace = (e, s) => { found.push(s); return '' };"
         "try { null.x } catch (e) { e.stack } [typeof std, typeof os]",
         **_ok(["undefined", "undefined"]), shareable=False),

    # ----- polluting what the console shim and the result description use ---------------------
    Case("pollute_array_join", "pollution",
         "Array.prototype.join = function () { throw new Error('pwned join') };"
         "console.log([1, 2], { a: 1 }); [1, 2, 3]",
         **_ok([1, 2, 3], "[ 1, 2, 3 ]"), console=("[ 1, 2 ] { a: 1 }",), shareable=False),
    Case("pollute_json_stringify", "pollution",
         "JSON.stringify = function () { return '{\"type\":\"hacked\"' };"
         "console.log({ a: 1 }); ({ a: 1 })",
         **_ok({"a": 1}, "{ a: 1 }"), console=("{ a: 1 }",), shareable=False),
    Case("pollute_object_tostring", "pollution",
         "Object.prototype.toString = function () { throw new Error('pwned') };"
         "console.log({}, [], new Date(0)); ({ b: [1] })",
         **_ok({"b": [1]}, "{ b: [ 1 ] }"), console=("{} [] 1970-01-01T00:00:00.000Z",),
         shareable=False),
    Case("pollute_string_replace", "pollution",
         "String.prototype.replace = function () { throw 1 };"
         "String.prototype.slice = function () { throw 2 };"
         "String.prototype.indexOf = function () { throw 3 };"
         "console.group('g'); console.log('a\\nb'); console.groupEnd(); 'x\\ny'",
         **_ok("x\ny"), console=("g", "  a\n  b"), shareable=False),
    Case("pollute_object_prototype_fields", "pollution",
         "for (const k of ['type', 'preview', 'json', 'name', 'message', 'stack'])"
         "  Object.defineProperty(Object.prototype, k, { get() { return 'hacked' }, set(v) {}, configurable: true });"
         "({ a: 1 })",
         **_ok({"a": 1}, "{ a: 1 }"), shareable=False),
    Case("pollute_error_prototype", "pollution",
         "Error.prototype.toString = function () { throw 1 };"
         "Object.defineProperty(Error.prototype, 'stack', { get() { throw 2 } });"
         "Object.defineProperty(Error.prototype, 'name', { get() { throw 3 } }); null.x",
         **_error(contains="null"), shareable=False),
    Case("pollute_number_formatting", "pollution",
         "Number.prototype.toString = function () { throw 1 }; Number.prototype.toFixed = function () { throw 1 };"
         "console.log(1.5, -0, NaN, [2.5]); 3.25",
         **_ok(3.25, "3.25"), console=("1.5 -0 NaN [ 2.5 ]",), shareable=False),
    Case("pollute_array_prototype_proxy", "pollution",
         "Object.setPrototypeOf(Array.prototype, new Proxy({}, {"
         "  get(t, k) { throw new Error('trap ' + String(k)) }, has() { throw new Error('has') } }));"
         "console.log([1, 2]); 'done'",
         **_ok("done"), console=("[ 1, 2 ]",), shareable=False),
    Case("pollute_globals_nulled", "pollution",
         "for (const k of ['Object', 'Array', 'Reflect', 'JSON', 'Symbol', 'Map', 'String',"
         "  'Number', 'Function', 'RegExp', 'Promise', 'Date', 'Proxy', 'Math']) globalThis[k] = null;"
         "console.log({ a: [1] }, 'x'); [{ b: 2 }]",
         **_ok([{"b": 2}], "[ { b: 2 } ]"), console=("{ a: [ 1 ] } x",), shareable=False),
    Case("pollute_promise_then", "pollution",
         "Promise.prototype.then = function () { for (;;) {} }; (async () => 1)()",
         **_ok(1), shareable=False),
    Case("pollute_freeze_everything", "pollution",
         "for (const k of Object.getOwnPropertyNames(globalThis)) { const v = globalThis[k];"
         "  if (v && (typeof v === 'object' || typeof v === 'function')) { Object.freeze(v);"
         "    if (v.prototype) Object.freeze(v.prototype) } }"
         "console.log([1, { a: 2 }]); ({ x: [1, 2] })",
         **_ok({"x": [1, 2]}), console=("[ 1, { a: 2 } ]",), shareable=False),
    Case("pollute_delete_console", "pollution", "delete globalThis.console; typeof console",
         **_ok("undefined"), shareable=False),
    # What the shim looks up when it runs rather than when it is installed.
    Case("pollute_error_global_console", "pollution",
         "globalThis.Error = null; console.log({ a: 1 }); ({ b: 2 })",
         **_ok({"b": 2}, "{ b: 2 }"), console=("{ a: 1 }",), shareable=False),
    Case("pollute_error_global_thrown", "pollution",
         "globalThis.Error = null; throw new TypeError('typed')",
         **_error("TypeError", "typed"), shareable=False),
    Case("pollute_object_prototype_get", "pollution",
         "Object.prototype.get = function () { return 1 }; console.log({ a: 1 }, [2]); ({ a: 1 })",
         **_ok({"a": 1}, "{ a: 1 }"), console=("{ a: 1 } [ 2 ]",), shareable=False),
    Case("pollute_string_repeat", "pollution",
         "String.prototype.repeat = function () { throw new Error('no repeat') };"
         "console.log({ aaaaaaaaaaaaaaaaaaaaaa: 'b'.padEnd(30, 'b'),"
         " cccccccccccccccccccccccc: 'd'.padEnd(32, 'd') }); 1",
         **_ok(1),
         console=("{\n  aaaaaaaaaaaaaaaaaaaaaa: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',\n"
                  "  cccccccccccccccccccccccc: 'dddddddddddddddddddddddddddddddd'\n}",),
         shareable=False),
    Case("pollute_number_tostring_escape", "pollution",
         "Number.prototype.toString = function () { throw new Error('no toString') }; console.log(['\\x01']); 1",
         **_ok(1), console=("[ '\\x01' ]",), shareable=False),
    Case("pollute_math_floor", "pollution",
         "Math.floor = function () { throw new Error('no floor') }; console.log('%i', 5.5); 1",
         **_ok(1), console=("5",), shareable=False),
    Case("pollute_map_prototype", "pollution",
         "Map.prototype.get = function () { throw new Error('no get') };"
         "Map.prototype.set = function () { throw new Error('no set') }; console.count(); console.count(); 1",
         **_ok(1), console=("default: 1", "default: 2"), shareable=False),
    Case("thrown_uninspectable", "pollution",
         "throw new Proxy(new Error('x'), { get() { throw new Error('nope') },"
         "  getPrototypeOf() { throw new Error('nope') } })",
         status="error", kind="exception"),
    Case("thrown_huge_message", "pollution", "throw new Error('m'.repeat(5e6))",
         **_error("Error"), extra=_message_prefix("mmmm"),
         note="describing the error must not cost more than the script did"),
    Case("thrown_symbol", "pollution", "throw Symbol('s')", **_error(contains="Symbol(s)")),
]


# ----- running a case and checking what it must keep -------------------------------------------

def run(sb: Sandbox, case: Case) -> tuple[Outcome, CallTime]:
    """Evaluate the case; returns the outcome and what the call cost (host clocks)."""
    # process_time: the guest may run on the engine's worker thread, not this one.
    t0, c0 = time.perf_counter(), time.process_time()
    if case.mode == "module":
        out = sb.eval_module(case.code, limits=case.limits)
    else:
        out = sb.eval(case.code, limits=case.limits)
    return out, CallTime((time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000)


def describe(out: Outcome) -> str:
    err = out.error
    return json.dumps({
        "status": out.status,
        "error": err and {"kind": err.kind, "name": err.name, "message": err.message[:300],
                          "limit": err.limit},
        "value": out.value and {k: (v if k != "preview" else v[:200]) for k, v in out.value.items()
                                if k != "json" or len(json.dumps(v)) < 300},
        "metrics": out.metrics and out.metrics.to_dict(),
        "state": out.session_state.to_dict(),
        "events": [e.type for e in out.events][-5:],
    }, default=str)


def check_outcome(case: Case, out: Outcome, call: CallTime) -> None:
    """Everything the case expects, and the invariants every evaluation must keep."""
    info = describe(out)
    _check_status_and_limit(case, out, info)
    _check_expected(case, out, info)
    _check_state_and_events(case, out, info)
    _check_metrics_and_time(case, out, call, info)


def _check_status_and_limit(case: Case, out: Outcome, info: str) -> None:
    # Status and kind.
    assert out.status == case.status, f"status {out.status!r}, expected {case.status!r}: {info}"
    if case.status == "ok":
        assert out.error is None, info
        assert out.value is not None, info
    else:
        assert out.error is not None, info
        assert out.error.kind == case.kind, f"kind {out.error.kind!r}, expected {case.kind!r}: {info}"
        assert out.value is None, info
    # The limit that stopped the script, by name and value.
    if case.kind in LIMIT_NAME_OF_KIND:
        assert out.error.limit is not None, info
        assert out.error.limit["name"] == LIMIT_NAME_OF_KIND[case.kind], info
        if case.kind != "stack_overflow":
            expected_value = getattr(case.limits, LIMIT_NAME_OF_KIND[case.kind])
            assert out.error.limit["value"] == expected_value, info


def _check_expected(case: Case, out: Outcome, info: str) -> None:
    # Expected value, preview, error.
    if case.value is not _ANY:
        assert "json" in out.value, f"no json in the value: {info}"
        assert out.value["json"] == case.value, info
    if case.preview is not None:
        assert out.value["preview"] == case.preview, info
    if case.json_omitted is not None:
        assert "json" not in out.value and out.value.get("json_omitted") == case.json_omitted, info
    if case.error_name is not None:
        assert out.error.name == case.error_name, info
    if case.message_contains is not None:
        assert case.message_contains in out.error.message, info
    if case.console is not None:
        assert tuple(console_texts(out)) == case.console, f"console {console_texts(out)!r}: {info}"


def _check_state_and_events(case: Case, out: Outcome, info: str) -> None:
    # Session state: a stack overflow always rolls back; a rollback is announced.
    if case.state is not None:
        assert out.session_state.state == case.state, info
    system = [e for e in out.events if e.type == "system"]
    rollbacks = [e for e in system if "rolled back" in e.payload["message"]]
    if out.session_state.state == "rolled_back":
        assert len(rollbacks) == 1, info
        assert out.session_state.checkpoint, info
    else:
        assert rollbacks == [], info
    # Whatever else the runtime noted (promises rejected without a handler) stays bounded.
    assert len(system) - len(rollbacks) <= MAX_HELD_REJECTIONS + 1, info
    # Exactly one terminal event, matching the status, and nothing after it but the system event.
    terminal = [i for i, e in enumerate(out.events) if e.type in ("value", "exception", "limit")]
    assert len(terminal) == 1, info
    assert out.events[terminal[0]].type == TERMINAL_OF_STATUS[out.status], info
    assert all(e.type == "system" for e in out.events[terminal[0] + 1:]), info
    if out.status == "ok":
        assert out.events[terminal[0]].payload == out.value, info


def _check_metrics_and_time(case: Case, out: Outcome, call: CallTime, info: str) -> None:
    limits = case.limits
    # Metrics.
    m = out.metrics
    assert m is not None, info
    assert m.events == len(out.events), info
    assert 0 < m.peak_memory_bytes <= MEM_CAP, f"peak memory {m.peak_memory_bytes} over the cap: {info}"
    # Console output never exceeds the caps, whatever stopped the script.
    texts = console_texts(out)
    assert len(texts) <= limits.max_events, info
    assert sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) <= limits.max_output_kb * 1024, info
    assert m.output_bytes <= limits.max_output_kb * 1024, info
    # Time: a stop is neither early nor late, and the caller gets control back promptly. Early
    # is judged on the engine's own clocks (a limit cannot fire before it is reached); late on
    # CPU time, which load does not inflate, and on the wall clock only as a hang guard.
    if case.kind == "timeout":
        assert m.wall_ms >= limits.wall_ms - 5, f"stopped early, wall {m.wall_ms} ms: {info}"
    if case.kind == "cpu_limit":
        assert m.cpu_ms <= limits.cpu_ms + CPU_SLACK_MS, f"cpu {m.cpu_ms} ms: {info}"
        assert m.cpu_ms >= limits.cpu_ms - 5, f"stopped early, cpu {m.cpu_ms} ms: {info}"
    # generous: WALL_SLACK_MS (above) is ~20x a normal overshoot, a hang guard
    assert m.wall_ms <= limits.wall_ms + WALL_SLACK_MS, f"wall {m.wall_ms} ms: {info}"
    # The script burns at most its wall limit of CPU; the stop, the rollback or checkpoint and
    # the description of the result add at most CALL_SLACK_MS of CPU on top.
    assert call.cpu_ms <= limits.wall_ms + CALL_SLACK_MS, f"the call used {call.cpu_ms:.0f} ms CPU: {info}"
    # generous: a hang guard for a call that waits (CPU time misses that), 5 s over the limit
    assert call.wall_ms <= limits.wall_ms + CALL_WALL_SLACK_MS, f"the call took {call.wall_ms:.0f} ms: {info}"
    if case.extra is not None:
        case.extra(out)


def check_usable(sb: Sandbox) -> None:
    """The next evaluation works, and the state from before the hostile script survived."""
    follow = sb.eval("40 + 2", limits=BASE)
    assert follow.status == "ok", f"follow-up eval failed: {describe(follow)}"
    assert follow.value["preview"] == "42", describe(follow)
    canary = sb.eval("globalThis.__canary", limits=BASE)
    assert canary.status == "ok", f"canary eval failed: {describe(canary)}"
    assert canary.value.get("json") == "alive-42", f"the global set before is gone: {describe(canary)}"


def plant_canary(sb: Sandbox) -> None:
    out = sb.eval(CANARY, limits=BASE)
    assert out.status == "ok" and out.value["json"] == "alive-42", describe(out)
    sb.checkpoint("canary")  # what a trap rolls back to
