"""Property: any program of sync and async host calls, zero-delay timers and microtasks, nested
in each other's callbacks, gives the events and metrics a reference model of the event loop
predicts (docs/api.md, "Timers and host functions": settled calls first, then due timers in
scheduling order, each followed by the jobs it queued; an async call's task runs when the loop
waits, and its event is recorded when it is delivered).

Zero-delay timers are due as soon as they are scheduled and the async functions finish in one
step, so the order depends on the rules alone, never on how fast the machine is."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import Sandbox


@dataclass(frozen=True)
class Op:
    kind: str  # sync | async | timer | micro
    label: str
    children: tuple[Op, ...] = field(default=())


def _ops(depth: int) -> st.SearchStrategy[tuple[Op, ...]]:
    leaf = st.builds(Op, st.just("sync"), st.just(""))
    if depth == 0:
        kinds = st.one_of(leaf, st.builds(Op, st.sampled_from(["async", "timer", "micro"]), st.just("")))
    else:
        kinds = st.one_of(leaf, st.builds(Op, st.sampled_from(["async", "timer", "micro"]), st.just(""),
                                          _ops(depth - 1)))
    return st.lists(kinds, max_size=4).map(tuple)


def _label(ops: tuple[Op, ...], counter: itertools.count[int]) -> tuple[Op, ...]:
    return tuple(Op(o.kind, f"{o.kind[0]}{next(counter)}", _label(o.children, counter)) for o in ops)


def _js(ops: tuple[Op, ...]) -> str:
    parts = []
    for o in ops:
        body = _js(o.children)
        if o.kind == "sync":
            parts.append(f"console.log('{o.label}:' + host.s('{o.label}'));")
        elif o.kind == "async":
            parts.append(f"host.a('{o.label}').then(v => {{ console.log(v); {body} }});")
        elif o.kind == "timer":
            parts.append(f"setTimeout(() => {{ console.log('{o.label}'); {body} }}, 0);")
        else:
            parts.append(f"queueMicrotask(() => {{ console.log('{o.label}'); {body} }});")
    return " ".join(parts)


def _model(program: tuple[Op, ...]) -> list[tuple[str, str]]:
    """The events (type, name or text) the loop must record, in order."""
    events: list[tuple[str, str]] = []
    jobs: deque[Op] = deque()
    timers: deque[Op] = deque()
    started: list[Op] = []  # async calls whose tasks have not run yet
    settled: deque[Op] = deque()

    def run(ops: tuple[Op, ...]) -> None:
        for o in ops:
            if o.kind == "sync":
                events.append(("host_call", "s"))
                events.append(("console", f"{o.label}:{o.label}"))
            elif o.kind == "async":
                started.append(o)
            elif o.kind == "timer":
                timers.append(o)
            else:
                jobs.append(o)

    def drain() -> None:
        while jobs:
            o = jobs.popleft()
            events.append(("console", o.label))
            run(o.children)

    run(program)
    drain()
    while True:
        if settled:
            o = settled.popleft()
            events.append(("host_call", "a"))
            jobs.append(o)  # the `then` reaction: it logs the value, then runs the children
            drain()
        elif timers:
            o = timers.popleft()
            events.append(("console", o.label))
            run(o.children)
            drain()
        elif started:
            settled.extend(started)
            started.clear()
        else:
            return events


async def _async_echo(x: str) -> str:
    return x


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ops(2))
def test_any_interleaving_matches_the_model(shape: tuple[Op, ...]) -> None:
    program = _label(shape, itertools.count())
    with Sandbox(functions={"s": lambda x: x, "a": _async_echo}) as sb:
        out = sb.eval(_js(program) + " 'done'")
        assert out.status == "ok", out.error
        assert out.value is not None and out.value["json"] == "done"
        seen = [(e.type, e.payload["name"] if e.type == "host_call" else e.payload["text"])
                for e in out.events[:-1]]
        assert seen == _model(program)
        assert all(e.payload["ok"] for e in out.events if e.type == "host_call")
        assert out.metrics is not None
        assert out.metrics.host_calls == sum(1 for t, _ in seen if t == "host_call")
        assert out.metrics.timers_fired == _count(program, "timer")
        assert out.metrics.timers_cancelled == 0
        assert sb.pending().tasks == 0


def _count(ops: tuple[Op, ...], kind: str) -> int:
    return sum((o.kind == kind) + _count(o.children, kind) for o in ops)
