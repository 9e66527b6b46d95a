"""Host functions: what crosses (JSON both ways, errors), under which budgets, recorded how."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
from typing import Any

import anyio
import pytest

from sandbox import HostError, HostFunction, Limits, Sandbox


def _calls(outcome: Any) -> list[dict[str, Any]]:
    return [e.payload for e in outcome.events if e.type == "host_call"]


def test_no_functions_no_host_object() -> None:
    with Sandbox() as sb:
        assert sb.eval("typeof host").value["json"] == "undefined"  # type: ignore[index]


@pytest.mark.parametrize("value", [0, -1.5, 2**53, "", "héllo \u2028 \U0001f600", True, None,
                                   [1, [2, [3]]], {"a": {"b": [None, False]}}])
def test_values_cross_as_json_both_ways(value: Any) -> None:
    seen: list[Any] = []

    def echo(x: Any = None) -> Any:
        seen.append(x)
        return x

    with Sandbox(functions={"echo": echo}) as sb:
        out = sb.eval(f"JSON.stringify([host.echo({json.dumps(value)})])")
        assert out.status == "ok", out.error
        assert json.loads(out.value["json"]) == [value]  # type: ignore[index]
        assert seen == [value]


def test_none_is_undefined_and_missing_arguments_are_not_passed() -> None:
    got: list[tuple[Any, ...]] = []

    def record(*args: Any) -> None:
        got.append(args)

    with Sandbox(functions={"record": record}) as sb:
        out = sb.eval("[host.record(), host.record(undefined, 1), typeof host.record(2)]")
        assert out.value["json"] == [None, None, "undefined"]  # type: ignore[index]
    # undefined in an array is JSON's null
    assert got == [(), (None, 1), (2,)]


def test_host_error_message_reaches_the_guest_and_nothing_else_does() -> None:
    def refuse() -> None:
        raise HostError("not allowed today")

    def crash() -> None:
        raise KeyError("/etc/shadow secret-token-123")

    with Sandbox(functions={"refuse": refuse, "crash": crash}) as sb:
        out = sb.eval("""
            const r = [];
            for (const f of [host.refuse, host.crash]) {
              try { f() } catch (e) {
                r.push([e.name, e.message, e instanceof Error, Object.keys(e).length]);
              }
            }
            r""")
        assert out.value["json"] == [  # type: ignore[index]
            ["HostError", "not allowed today", True, 0],
            ["HostError", "host function 'crash' failed", True, 0]]
        text = json.dumps(out.to_dict())
        assert "secret-token" not in text and "shadow" not in text and "KeyError" not in text
        assert [c["error"] for c in _calls(out)] == ["not allowed today", "host function 'crash' failed"]


@pytest.mark.parametrize("result", [{1, 2}, float("nan"), object(), b"bytes"])
def test_a_result_that_is_not_json_is_a_host_error(result: Any) -> None:
    with Sandbox(functions={"f": lambda: result}) as sb:
        out = sb.eval("try { host.f(); 'no' } catch (e) { e.name + ': ' + e.message }")
        assert out.value["json"] == "HostError: host function 'f' returned a value that is not JSON"  # type: ignore[index]


def test_a_result_nested_too_deep_is_refused_not_parsed() -> None:
    deep: list[Any] = []
    for _ in range(200):
        deep = [deep]
    with Sandbox(functions={"f": lambda: deep}) as sb:
        out = sb.eval("try { host.f() } catch (e) { e.message }")
        assert "nested deeper than" in out.value["json"]  # type: ignore[index]


def test_arguments_the_host_cannot_read_are_a_host_error_not_a_crash() -> None:
    with Sandbox(functions={"f": lambda *a: len(a)}) as sb:
        out = sb.eval("let a = []; for (let i = 0; i < 5000; i++) a = [a];"
                      "try { host.f(a) } catch (e) { e.name + ': ' + e.message }")
        assert out.value["json"] == "HostError: the arguments are not JSON the host can read"  # type: ignore[index]
        assert sb.eval("host.f(1, 2)").value["json"] == 2  # type: ignore[index]


def test_async_function_gives_a_promise_settled_before_the_evaluation_ends() -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0.01)
        return x * 2

    async def refuse() -> None:
        await asyncio.sleep(0)
        raise HostError("no")

    with Sandbox(functions={"double": double, "refuse": refuse}) as sb:
        out = sb.eval("const p = host.double(21); p.then(v => console.log('got', v));"
                      "[p instanceof Promise]")
        assert out.status == "ok"
        assert out.value["json"] == [True]  # type: ignore[index]
        assert [e.payload["text"] for e in out.events if e.type == "console"] == ["got 42"]
        mod = sb.eval_module("export const v = await host.double(5);"
                             "export const e = await host.refuse().catch(e => e.name + ':' + e.message);")
        assert mod.value["json"] == {"e": "HostError:no", "v": 10}  # type: ignore[index]
        assert [(c["name"], c["ok"]) for c in _calls(mod)] == [("double", True), ("refuse", False)]


_REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="unset")


def test_an_async_functions_first_step_runs_in_the_call_with_the_loop_running() -> None:
    ran: list[str] = []

    async def quick(x: int) -> int:
        asyncio.get_running_loop()  # raises if no loop were running
        ran.append("quick")
        _REQUEST.set("quick")
        return x + 1

    async def later(x: int) -> str:
        _REQUEST.set(f"later-{x}")
        got = await asyncio.get_running_loop().create_task(asyncio.sleep(0.01, result=x))
        return f"{_REQUEST.get()}:{got}"

    with Sandbox(functions={"quick": quick, "later": later, "ran": lambda: len(ran)}) as sb:
        out = sb.eval_module("const q = host.quick(1); export const before = host.ran();"
                             " export const v = [await q, await host.later(2), await host.later(3)]")
        # quick's body ran inside its call, before the script went on; each call has its own
        # context, kept across its awaits; none leaks into the caller's.
        assert out.value["json"] == {"before": 1, "v": [2, "later-2:2", "later-3:3"]}  # type: ignore[index]
        assert _REQUEST.get() == "unset"
        assert sb.pending().tasks == 0


def test_an_async_functions_first_step_runs_inside_its_own_task() -> None:
    async def bounded() -> str:
        async with asyncio.timeout(5):  # needs a current task from the first line on
            await asyncio.sleep(0)
        return "timeout ok"

    async def scoped() -> str:
        with anyio.fail_after(5):  # anyio's cancel scopes hold the current task weakly
            await anyio.sleep(0)
        return "anyio ok"

    async def current() -> bool:
        return asyncio.current_task() is not None

    async def cut_short() -> str:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(60)
        return "not reached"

    with Sandbox(functions={"bounded": bounded, "scoped": scoped, "current": current,
                            "cut": cut_short}) as sb:
        out = sb.eval_module("export const r = [await host.bounded(), await host.scoped(),"
                             " await host.current(), await host.cut().catch(e => e.message)]")
        assert out.value["json"] == {"r": ["timeout ok", "anyio ok", True,  # type: ignore[index]
                                           "host function 'cut' failed"]}
        assert sb.pending().tasks == 0


def test_an_async_function_that_ends_at_once_but_late_is_timed_out_as_a_sync_one_is() -> None:
    async def slow_start() -> int:
        time.sleep(0.08)
        return 1

    with Sandbox(functions={"slow": HostFunction(slow_start, timeout_ms=20)}) as sb:
        out = sb.eval_module("export const m = await host.slow().catch(e => e.message)")
        assert out.value["json"] == {"m": "host function 'slow' timed out after 20 ms"}  # type: ignore[index]


def test_a_call_stopped_before_the_loop_ever_ran_still_runs_its_cleanup() -> None:
    state: list[str] = []

    async def hold() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            state.append("finally")

    with Sandbox(functions={"hold": hold}) as sb:
        # The script never lets the loop run: the call's task, suspended after its eager first
        # step, is cancelled, and its coroutine unwinds.
        out = sb.eval("host.hold(); for (;;) {}", limits=Limits(cpu_ms=100))
        assert out.error is not None and out.error.kind == "cpu_limit"
        assert state == ["finally"]
        assert sb.pending().tasks == 0
        (call,) = _calls(out)
        assert (call["ok"], call["error"]) == (False, "cancelled")


def test_expose_on_a_live_sandbox_and_replace() -> None:
    with Sandbox() as sb:
        sb.expose("one", lambda: 1)
        assert sb.eval("host.one()").value["json"] == 1  # type: ignore[index]
        sb.expose("one", lambda: "uno")
        assert sb.eval("host.one()").value["json"] == "uno"  # type: ignore[index]
        assert sorted(sb.functions) == ["one"]
        for bad in ("", "1x", "a-b", "a b", "__proto__\n", 5):
            with pytest.raises(ValueError, match="identifier"):
                sb.expose(bad, lambda: 1)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            sb.expose("x", 42)  # type: ignore[arg-type]


def test_a_name_the_guest_invents_never_reaches_python() -> None:
    calls: list[str] = []
    with Sandbox(functions={"ok": lambda: calls.append("ok")}) as sb:
        out = sb.eval("""
            const r = [];
            host.evil = host.ok;           // frozen name in the wrapper: still calls 'ok'
            Object.defineProperty(host, 'other', { value: host.ok });
            for (const f of [() => host.evil(), () => host.other(), () => host.missing()]) {
              try { f(); r.push('called') } catch (e) { r.push(e.name) }
            }
            r""")
        assert out.value["json"] == ["called", "called", "TypeError"]  # type: ignore[index]
        assert calls == ["ok", "ok"]
        assert [c["name"] for c in _calls(out)] == ["ok", "ok"]


def test_a_script_may_shadow_host() -> None:
    with Sandbox(functions={"f": lambda: 1}) as sb:
        assert sb.eval("let host = 5; host").value["json"] == 5  # type: ignore[index]


def test_events_record_calls_without_arguments_unless_asked() -> None:
    with Sandbox(functions={"quiet": lambda s: len(s),
                            "loud": HostFunction(lambda s: len(s), log_args=True)}) as sb:
        out = sb.eval("host.quiet('password'); host.loud('public')")
        quiet, loud = _calls(out)
        assert set(quiet) == {"name", "ms", "ok", "bytes_in", "bytes_out"}
        assert (quiet["name"], quiet["ok"], quiet["bytes_in"], quiet["bytes_out"]) == ("quiet", True, 12, 1)
        assert "password" not in json.dumps(out.to_dict())
        assert loud["args"] == '["public"]'
        assert out.metrics is not None and out.metrics.host_calls == 2


def test_the_call_budget_stops_the_script() -> None:
    with Sandbox(functions={"f": lambda: 1}) as sb:
        out = sb.eval("for (;;) { try { host.f() } catch (e) {} }", limits=Limits(max_host_calls=50))
        assert out.status == "limit_exceeded"
        assert out.error is not None and out.error.kind == "host_call_limit"
        assert out.error.limit == {"name": "max_host_calls", "value": 50, "used": 51}
        assert len(_calls(out)) == 50
        assert sb.eval("host.f()").value["json"] == 1  # type: ignore[index]


@pytest.mark.parametrize(("limits", "code", "name"), [
    (Limits(max_host_in_kb=1), "host.f('x'.repeat(2000))", "max_host_in_kb"),
    (Limits(max_host_out_kb=1), "host.big()", "max_host_out_kb"),
])
def test_the_byte_budgets_stop_the_script(limits: Limits, code: str, name: str) -> None:
    with Sandbox(functions={"f": lambda s: None, "big": lambda: "y" * 5000}) as sb:
        out = sb.eval(f"try {{ {code} }} catch (e) {{ 'caught' }}", limits=limits)
        assert out.status == "limit_exceeded"
        assert out.error is not None and out.error.kind == "host_bytes_limit"
        assert out.error.limit is not None and out.error.limit["name"] == name


def test_host_calls_count_toward_max_events() -> None:
    with Sandbox(functions={"f": lambda: 1}) as sb:
        out = sb.eval("console.log('a'); host.f(); host.f()", limits=Limits(max_events=2))
        assert out.error is not None and out.error.kind == "event_limit"
        assert [e.type for e in out.events] == ["console", "host_call", "limit"]


def test_a_host_functions_time_is_not_the_scripts_cpu_time() -> None:
    def spin() -> int:
        end = time.thread_time() + 0.3
        n = 0
        while time.thread_time() < end:
            n += 1
        return 1

    with Sandbox(functions={"spin": spin}) as sb:
        out = sb.eval("host.spin()", limits=Limits(cpu_ms=100, wall_ms=10_000))
        assert out.status == "ok", out.error
        assert out.metrics is not None and out.metrics.cpu_ms < 100


def test_the_wall_limit_covers_a_pending_call_and_cancels_its_task() -> None:
    state: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            state.append("finally")

    with Sandbox(functions={"forever": forever}) as sb:
        out = sb.eval("host.forever()", limits=Limits(wall_ms=200))
        assert out.status == "timeout"
        assert state == ["finally"]
        assert sb.pending().tasks == 0
        (call,) = _calls(out)
        assert (call["ok"], call["error"]) == (False, "cancelled")
        assert out.events[-1].type == "limit"


def test_a_functions_own_timeout_is_a_host_error() -> None:
    async def slow() -> int:
        await asyncio.sleep(60)
        return 1

    with Sandbox(functions={"slow": HostFunction(slow, timeout_ms=50)}) as sb:
        out = sb.eval_module("export const m = await host.slow().catch(e => e.message)")
        assert out.value["json"] == {"m": "host function 'slow' timed out after 50 ms"}  # type: ignore[index]
        assert sb.pending().tasks == 0
    with pytest.raises(ValueError):
        HostFunction(slow, timeout_ms=0)


def test_cancel_from_another_thread_ends_a_wait_on_a_host_call() -> None:
    started = threading.Event()

    async def wait() -> None:
        started.set()
        await asyncio.sleep(60)

    with Sandbox(functions={"wait": wait}) as sb:
        threading.Thread(target=lambda: (started.wait(10), sb.cancel())).start()
        out = sb.eval("host.wait()", limits=Limits(wall_ms=30_000))
        assert out.status == "cancelled"
        assert sb.pending().tasks == 0
        assert sb.eval("1 + 1").value["json"] == 2  # type: ignore[index]


def test_re_entering_the_sandbox_is_refused_and_harmless() -> None:
    holder: dict[str, Sandbox] = {}

    def reenter() -> Any:
        return holder["sb"].eval("1").status

    with Sandbox(functions={"reenter": reenter}) as sb:
        holder["sb"] = sb
        out = sb.eval("try { host.reenter() } catch (e) { e.message }")
        assert out.value["json"] == "host function 'reenter' failed"  # type: ignore[index]
        assert sb.eval("2").value["json"] == 2  # type: ignore[index]


def test_functions_survive_rollback_clone_and_image() -> None:
    with Sandbox(functions={"f": lambda: "f"}) as sb:
        sb.expose("g", lambda: "g")  # after the initial checkpoint
        out = sb.eval("function r() { r() } r()")
        assert out.session_state.state == "rolled_back"
        assert sb.eval("host.f() + host.g()").value["json"] == "fg"  # type: ignore[index]
        with sb.clone() as twin:
            assert twin.eval("host.g()").value["json"] == "g"  # type: ignore[index]
        data = sb.image(key=b"k" * 32)
    with Sandbox.from_image(data, key=b"k" * 32, functions={"g": lambda: "new"}) as restored:
        assert restored.eval("host.g()").value["json"] == "new"  # type: ignore[index]
        # f is in the image's `host` object, but no longer offered: the host refuses it
        out = restored.eval("try { host.f() } catch (e) { e.message }")
        assert out.value["json"] == "no host function 'f' is offered"  # type: ignore[index]


def test_a_kept_function_still_calls_its_own_name_after_an_image_offers_others() -> None:
    """The guest numbers its host functions (the slot each passes the host), and the numbers
    live in its memory: restored with the names offered in another order, or with some gone,
    a function kept in a variable still calls its own name, or is refused by name."""
    with Sandbox(functions={"a": lambda: "a", "b": lambda: "b"}) as sb:
        sb.eval("globalThis.keepA = host.a; globalThis.keepB = host.b")
        data = sb.image(key=b"k" * 32)
    offered = {"c": lambda: "c", "b": lambda: "new b"}
    with Sandbox.from_image(data, key=b"k" * 32, functions=offered) as restored:
        out = restored.eval("""[keepB(), host.c(), host.b(),
            (() => { try { keepA() } catch (e) { return e.name + ': ' + e.message } })()]""")
        assert out.value["json"] == ["new b", "c", "new b",  # type: ignore[index]
                                     "HostError: no host function 'a' is offered"]


def test_then_is_not_a_host_function_name() -> None:
    # `host` would become a thenable: `await host` would call it.
    with pytest.raises(ValueError, match="'then'"):
        Sandbox(functions={"then": lambda *a: None})
    with Sandbox() as sb, pytest.raises(ValueError, match="'then'"):
        sb.expose("then", lambda *a: None)


def test_an_error_message_is_counted_against_the_result_budget() -> None:
    def loud() -> None:
        raise HostError("x" * 4096)

    with Sandbox(functions={"loud": loud}) as sb:
        out = sb.eval("for (let i = 0; i < 10; i++) { try { host.loud() } catch (e) {} }",
                      limits=Limits(max_host_out_kb=16))
        assert out.error is not None and out.error.kind == "host_bytes_limit"
        calls = _calls(out)
        assert len(calls) == 5 and all(c["bytes_out"] == 4096 for c in calls)


@pytest.mark.parametrize("value", [0, 1, -1, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**53,
                                   True, False, 1.5, -0.0, 1e300, "", "s", [], {}])
def test_values_answered_as_they_are_or_as_json_are_the_same_to_the_guest(value: Any) -> None:
    """Booleans and 32-bit integers cross without JSON, sync and async; what the guest sees
    is what JSON would have given it."""
    async def later() -> Any:
        return value

    with Sandbox(functions={"now": lambda: value, "later": later}) as sb:
        expected = json.dumps(value)
        out = sb.eval_module(f"""const a = host.now(), b = await host.later();
            export const same = [a, b].map(v => Object.is(v, JSON.parse({json.dumps(expected)}))
                || JSON.stringify(v) === {json.dumps(expected)});
            export const types = [typeof a, typeof b];""")
        assert out.status == "ok", out.error
        got = out.value["json"]  # type: ignore[index]
        assert got["same"] == [True, True]
        kind = {bool: "boolean", int: "number", float: "number", str: "string"}.get(type(value), "object")
        assert got["types"] == [kind, kind]


@pytest.mark.parametrize("name", ["fs.readFile", "a.b", "_x.$y"])
def test_a_name_may_be_two_identifiers_joined_by_a_dot(name: str) -> None:
    with Sandbox(functions={name: lambda x: x * 2}) as sb:
        out = sb.eval(f"host[{json.dumps(name)}](21)")
        assert out.value["json"] == 42  # type: ignore[index]
        assert [e.payload["name"] for e in out.events if e.type == "host_call"] == [name]


@pytest.mark.parametrize("name", ["a.", ".a", "a.b.c", "a..b", "1a.b", "a-b", "a .b"])
def test_other_dotted_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="JavaScript identifier"):
        Sandbox(functions={name: lambda: None})


def test_a_clone_gets_its_own_functions_in_the_slots_its_base_exposed() -> None:
    """A base image exposes placeholders; each clone offers its own function under the same
    name, and a function the base's guest code kept calls the clone's."""
    with Sandbox(functions={"f": lambda: "base"}) as base:
        base.eval("globalThis.kept = host.f")
        with base.clone(functions={"f": lambda: "clone", "g": lambda: "extra"}) as clone:
            assert clone.eval("[kept(), host.f(), host.g()]").value["json"] == [  # type: ignore[index]
                "clone", "clone", "extra"]
        assert base.eval("kept()").value["json"] == "base"  # type: ignore[index]


def test_a_blocking_host_function_sees_the_deadline_and_the_cancel() -> None:
    seen: list[tuple[float, bool]] = []
    with Sandbox(limits=Limits(wall_ms=5000)) as sb:
        def probe() -> None:
            seen.append((sb.wall_deadline - time.monotonic(), sb.stopping()))
            sb.cancel()
            seen.append((0.0, sb.stopping()))
        sb.expose("probe", probe)
        out = sb.eval("host.probe(); for (;;) {}")
    assert out.status == "cancelled"
    assert 0 < seen[0][0] <= 5.0
    assert [s for _, s in seen] == [False, True]


def test_a_functions_detail_of_its_result_is_recorded_in_its_event() -> None:
    async def later(n: int) -> dict[str, int]:
        await asyncio.sleep(0)
        return {"n": n, "secret": 7}

    def broken(result: Any) -> dict[str, Any]:
        raise RuntimeError("no detail")

    with Sandbox(functions={
            "now": HostFunction(lambda n: {"n": n, "secret": 7}, detail=lambda r: {"n": r["n"]}),
            "later": HostFunction(later, detail=lambda r: {"n": r["n"]}),
            "bad": HostFunction(lambda: 1, detail=broken),
            "fails": HostFunction(lambda: 1 / 0, detail=lambda r: {"never": True})}) as sb:
        out = sb.eval_module("host.now(1); await host.later(2); host.bad();"
                             " try { host.fails() } catch (e) {}")
    calls = [e.payload for e in out.events if e.type == "host_call"]
    assert [c.get("detail") for c in calls] == [{"n": 1}, {"n": 2}, None, None]
    assert [c["ok"] for c in calls] == [True, True, True, False]
