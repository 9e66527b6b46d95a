"""Console output: Node-style formatting, levels, ordering, streaming."""

from __future__ import annotations

import pytest

from sandbox import Event, Sandbox

FORMAT_CASES = [
    ("console.log('a', 1, {b: 2})", "a 1 { b: 2 }"),
    ("console.log('%s is %d years', 'Bob', 42.9)", "Bob is 42.9 years"),
    ("console.log('%i|%f|%j|%%|%o', 3.7, '1.5', {a: [1]}, [1])", "3|1.5|{\"a\":[1]}|%|[ 1 ]"),
    ("console.log('%s', 'only', 'extra')", "only extra"),
    ("console.log()", ""),
    ("console.log(null, undefined, true, -0, 5n)", "null undefined true -0 5n"),
    ("console.log([1, 'two', [3]])", "[ 1, 'two', [ 3 ] ]"),
    ("console.log({s: 'x', n: null, u: undefined, f() {}})", "{ s: 'x', n: null, u: undefined, f: [Function: f] }"),
    ("console.log(new Map([['k', {v: 1}]]))", "Map(1) { 'k' => { v: 1 } }"),
    ("console.log('multi\\nline')", "multi\nline"),
    ("print('via print')", "via print"),
    ("console.log(Symbol.iterator)", "Symbol(Symbol.iterator)"),
]


@pytest.mark.parametrize(("code", "text"), FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
def test_format_matches_node(shared_sb: Sandbox, code: str, text: str) -> None:
    out = shared_sb.eval(code)
    consoles = [e for e in out.events if e.type == "console"]
    assert [e.payload["text"] for e in consoles] == [text]


def test_long_objects_break_over_lines_like_node(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("console.log({alpha: 'aaaaaaaaaaaa', beta: 'bbbbbbbbbbbbbb',"
                         " gamma: 'cccccccccccc', delta: 1234567})")
    text = out.events[0].payload["text"]
    assert text == ("{\n  alpha: 'aaaaaaaaaaaa',\n  beta: 'bbbbbbbbbbbbbb',\n"
                    "  gamma: 'cccccccccccc',\n  delta: 1234567\n}")


def test_levels_and_order(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("console.log(1); console.info(2); console.warn(3); console.error(4); console.debug(5); 6")
    assert [(e.type, e.payload.get("level"), e.payload.get("text")) for e in out.events] == [
        ("console", "log", "1"), ("console", "info", "2"), ("console", "warn", "3"),
        ("console", "error", "4"), ("console", "debug", "5"), ("value", None, None),
    ]


def test_error_objects_print_name_message_and_stack(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("function thrower() { return new RangeError('nope') }\nconsole.error(thrower())")
    text = out.events[0].payload["text"]
    assert text.startswith("RangeError: nope\n    at thrower")


def test_console_helpers(shared_sb: Sandbox) -> None:
    out = shared_sb.eval("console.assert(1 === 2, 'math'); console.count(); console.count(); "
                         "console.group('g'); console.log('inner'); console.groupEnd(); console.log('outer')")
    texts = [e.payload["text"] for e in out.events if e.type == "console"]
    assert texts == ["Assertion failed: math", "default: 1", "default: 2", "g", "  inner", "outer"]


def test_events_stream_as_they_happen(sb: Sandbox) -> None:
    seen: list[tuple[str, int]] = []

    def on_event(event: Event) -> None:
        # Each callback arrives while the script still runs: the number of events recorded so
        # far by the sandbox equals what this consumer has seen.
        seen.append((event.type, len(sb._events)))

    sb.eval("for (let i = 0; i < 5; i++) console.log(i); 'done'", on_event=on_event)
    assert [t for t, _ in seen] == ["console"] * 5 + ["value"]
    assert [n for _, n in seen] == [1, 2, 3, 4, 5, 6]


def test_a_failing_event_consumer_stops_the_script(sb: Sandbox) -> None:
    def on_event(event: Event) -> None:
        raise RuntimeError("disk full")

    out = sb.eval("let n = 0; for (;;) { console.log(n++) }", on_event=on_event)
    assert out.status == "crashed"
    assert out.error is not None and out.error.kind == "internal"
    assert "disk full" in out.error.message
    assert sb.eval("n > 0").value == {"type": "boolean", "preview": "true", "json": True}


def test_replacing_console_methods_only_affects_the_script(sb: Sandbox) -> None:
    sb.eval("console.log = () => {}; Array.prototype.join = () => { throw new Error('x') }")
    out = sb.eval("console.info({a: [1, 2]}); [1, 2]")
    assert out.events[0].payload["text"] == "{ a: [ 1, 2 ] }"
    assert out.value is not None and out.value["preview"] == "[ 1, 2 ]"


def test_output_metrics_count_bytes_and_events(sb: Sandbox) -> None:
    out = sb.eval("console.log('héllo'); console.log('x')")
    assert out.metrics is not None
    assert out.metrics.output_bytes == len("héllo".encode()) + 1
    assert out.metrics.events == 3  # two console lines and the value


def test_long_lines_built_by_concatenation_are_recorded_whole(sb: Sandbox) -> None:
    # QuickJS-NG represents long concatenations as ropes: they are still strings.
    out = sb.eval("let s = ''; for (let i = 0; i < 300; i++) s += 'abcdefghij'; console.log(s);"
                  " console.log('y'.repeat(3000))")
    texts = [e.payload["text"] for e in out.events if e.type == "console"]
    assert texts == ["abcdefghij" * 300, "y" * 3000]
