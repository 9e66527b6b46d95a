"""The host side of a sandbox's host functions and timers.

The guest reaches the host through one bridge (`hostBridge(op, a, b, c)` in the bootstrap): a
call of a host function by its slot, with its arguments as JSON and the number the guest gave
the call; a timer to schedule; a timer to clear. Everything it is given is checked here,
whatever the script did to `host` or `setTimeout`: a slot that names no offered function is
refused, and every call is counted against the evaluation's budgets
(`LimitWatch.account_host_call`) before the function runs.

A synchronous function answers inside the call. An awaitable result becomes an asyncio task on
the sandbox's own loop (made on first use, run only on the guest's thread, between turns), and
the guest gets a promise that a later turn settles by the call's number. Between turns no wasm
frame is live: the evaluation is back in Python, waiting for the next due timer or settled call.

The schedule (due times, intervals, pending calls) lives here; the callbacks and the promises'
resolvers live in the guest, keyed by the same ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import inspect
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from sandbox.eager_start import start_eagerly
from sandbox.json_depth import JSON_MAX_DEPTH, check_depth, too_deep
from sandbox.limits import LimitWatch
from sandbox.log import get_logger
from sandbox.outcome import Event
from sandbox.quickjs_abi import (
    NULL_REPLY,
    OP_CLEAR,
    OP_TIMER,
    STOP_SCRIPT,
    TURN_FIRE,
    TURN_REJECT,
    TURN_RESOLVE,
    NullReply,
    StopScript,
)

log = get_logger("sandbox.host")


# Pending timers per sandbox: one more is a RangeError in the guest, so a script that schedules
# timers in a loop cannot grow the host's heap without bound.
MAX_PENDING_TIMERS = 10_000
# How long a cancelled host task may take to unwind before it is given up on (and logged).
CANCEL_GRACE_S = 1.0

# A JavaScript identifier, or two joined by a dot: a module's functions are named for it
# (`fs.readFileSync` is `host["fs.readFileSync"]`, and its events say so).
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)?\Z")
# One encoder and one scanner for every call: json.dumps with options, and json.loads, build
# or look up theirs on each call, which costs more than a small call's whole encoding.
_ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":"))
# typeshed does not declare the decoder's scanner, an attribute set in its __init__.
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_quote = json.encoder.encode_basestring  # a str's JSON (C), what _ENCODER would make of it
# Results that are never awaitable (checked before inspect.isawaitable, which is slower).
_PLAIN = frozenset({type(None), bool, int, float, str, list, dict, tuple})
# Integers the guest gets as they are (a tagged JSValue), without JSON.
_SMALL_INT = range(-(2**31), 2**31)


class HostError(Exception):
    """Raised by a host function: the guest gets a `HostError` with this message, and only it.

    Any other exception reaches the guest as "host function 'name' failed", never its text,
    traceback or type: those may name host paths or hold secrets. It is logged on the host."""


@dataclass(frozen=True)
class HostFunction:
    """A host function and how it is called.

    `timeout_ms` bounds an asynchronous function (its task is cancelled and the guest sees a
    HostError); a synchronous one cannot be interrupted, so its result is discarded if it took
    longer. `log_args` records the arguments' JSON in each `host_call` event (off by default:
    arguments may hold secrets). `detail`, given a successful call's result, returns what its
    event should also say about it (`{"exit": 0}` for a command), recorded as `detail`."""

    fn: Callable[..., Any]
    timeout_ms: int | None = None
    log_args: bool = False
    detail: Callable[[Any], Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError("a host function must be callable")
        t = self.timeout_ms
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t <= 0):
            raise ValueError(f"timeout_ms must be a positive integer, got {t!r}")


def as_host_function(name: str, value: Callable[..., Any] | HostFunction) -> HostFunction:
    """Check a name and wrap a plain callable."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError("a host function's name must be a JavaScript identifier, or two joined "
                         f"by a dot, got {name!r}")
    if name == "then":
        # `host` would be a thenable: `await host` would call it, and resolve to whatever.
        raise ValueError("a host function may not be named 'then'")
    return value if isinstance(value, HostFunction) else HostFunction(value)


class Pending(NamedTuple):
    """What a sandbox still has scheduled: its timers, its host calls not yet settled, and
    the asyncio tasks of its loop not finished. All three are 0 between evaluations, except
    tasks that ignored their cancel (they get another at close)."""

    timers: int
    calls: int
    tasks: int


class Turn(NamedTuple):
    """One step for the guest: settle call `ident`, fire timer `ident`, or expose a name."""

    kind: int
    ident: int
    text: bytes | int | None  # JSON or a message; a boolean or small integer as it is; None: undefined


class _Encoded(NamedTuple):
    ok: bool
    text: str  # JSON ('' for undefined) or the error message


@dataclass
class _Pending:
    name: str
    started: float
    bytes_in: int
    args: str | None
    awaitable: Awaitable[Any] | None = None
    task: asyncio.Task[None] | None = None
    result: _Encoded | None = None  # filled when the task ends
    value: Any = None  # and the value it returned
    detail: dict[str, Any] | None = None  # what HostFunction.detail said of it


class HostBridge:
    """Host functions, timers and pending calls of one sandbox (see the module's docstring)."""

    def __init__(self, watch: LimitWatch, emit: Callable[[Event], None]) -> None:
        self._watch = watch
        self._emit = emit
        self.functions: dict[str, HostFunction] = {}
        # The guest calls a function by its slot, a small integer (no string to read). The
        # guest numbers its names, and keeps the numbers in its memory, so that a function
        # kept across an image or a rollback still names itself: the host learns them as it
        # exposes each name (`bind`).
        self._names: dict[int, str] = {}
        # The schedule: a heap of (due, seq, id); `timers` maps a live id to (seq, interval ms
        # or None). A cleared timer's heap entry stays until it comes up, then is skipped.
        self._heap: list[tuple[float, int, int]] = []
        self.timers: dict[int, tuple[int, int | None]] = {}
        self.calls: dict[int, _Pending] = {}
        self._settled: deque[int] = deque()
        # Calls that ended in their first step (eager_start): settled when the loop would run,
        # as their tasks would have been.
        self._ready: list[int] = []
        self._next_id = 0
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting = False  # the loop runs in _run_loop: a settled call or a wake stops it
        self._stubborn: set[asyncio.Task[None]] = set()  # tasks that outlived their cancel
        self.woken = False
        self._wake = threading.Event()
        self.timers_fired = 0
        self.timers_cancelled = 0

    def bind(self, slot: int, name: str) -> None:
        """The guest's `host.<name>` calls by `slot` (the guest's answer to exposing it)."""
        self._names[slot] = name

    def unbind_all(self) -> None:
        """The guest's memory was replaced (a rollback, an image): its slots are learnt anew."""
        self._names.clear()

    # ----- from the guest (inside its bridge call) -------------------------------------------

    def bridge(self, op: int, a: int | str | None, b: int | str | None,
               c: int | str | None = None) -> bytes | int | NullReply | StopScript | None:
        """Answer the guest's bridge call other than a well-formed OP_CALL (see `call`): a
        timer to schedule or to clear; anything else is refused with an error's text."""
        if op == OP_TIMER and isinstance(a, int) and isinstance(b, int):
            return self._add_timer(a, b != 0)
        if op == OP_CLEAR and isinstance(a, int):
            if self.timers.pop(a, None) is not None:
                self.timers_cancelled += 1
            return None
        return b"ethe host bridge was called with arguments it does not take"

    def call(self, slot: int, args_json: str, ident: int) -> bytes | int | NullReply | StopScript | None:
        """A host function's call (`OP_CALL`, which the instance hands here directly): its
        slot, its arguments' JSON and the id the guest will know it by if it is asynchronous.

        The answer is undefined (None), a boolean or a 32-bit integer, given to the guest as it
        is; null (NULL_REPLY): a promise, which a later turn settles under that id; text whose
        first letter says what the rest is: `v` a value's JSON, `e` an error's message, `n`
        (alone) that the function is not offered; or STOP_SCRIPT when a budget stops the
        script."""
        # The hottest path of the bridge: kept flat (each Python call costs a few percent).
        name = self._names.get(slot)
        hf = self.functions.get(name) if name is not None else None
        if name is None or hf is None:
            return b"n"  # the guest names the function in its error
        watch = self._watch
        bytes_in = (len(args_json) if args_json.isascii()
                    else len(args_json.encode("utf-8", "surrogatepass")))
        if not watch.account_host_call(bytes_in):
            return STOP_SCRIPT
        logged = args_json if hf.log_args else None
        started = time.monotonic()
        args = _parse_args(args_json)
        result: Any = None
        if args is None:
            encoded = _Encoded(False, "the arguments are not JSON the host can read")
        else:
            mark = watch.host_started()  # the function's time is the host's, not the script's CPU
            try:
                result = hf.fn(*args)
            except HostError as exc:
                encoded = _Encoded(False, _message(exc))
            except Exception as exc:  # noqa: BLE001 - any failure of host code: never shown to the guest
                encoded = _failed(name, exc)
            else:
                if type(result) not in _PLAIN and inspect.isawaitable(result):
                    return self._start_task(ident, name, hf, result, started, bytes_in, logged)
                encoded = _encode_result(name, result)
                if hf.timeout_ms is not None and time.monotonic() - started > hf.timeout_ms / 1000:
                    encoded = _Encoded(False, _timed_out(name, hf.timeout_ms))
            finally:
                watch.host_ended(mark)
        detail = _detail_of(name, hf.detail, result) if hf.detail is not None and encoded.ok else None
        text = self._deliver(name, started, bytes_in, logged, encoded, detail)
        if text is None:
            return STOP_SCRIPT
        if not encoded.ok:
            return b"e" + text
        answer = _as_value(result, text)
        return b"v" + answer if type(answer) is bytes else answer

    def _deliver(self, name: str, started: float, bytes_in: int, args: str | None,
                 encoded: _Encoded, detail: dict[str, Any] | None = None) -> bytes | None:
        """A call's answer on its way to the guest, sync or async: recorded, counted against
        max_host_out_kb (a result's JSON, or an error's message: a host function's own text is
        no more free than its results); its UTF-8 bytes, or None when that stopped the script."""
        text = encoded.text.encode("utf-8", "surrogatepass")
        out = len(text)
        self._record(name, started, bytes_in, out, args, None if encoded.ok else encoded.text, detail)
        if not self._watch.account_host_out(out):
            return None
        return text

    def _start_task(self, ident: int, name: str, hf: HostFunction, awaitable: Awaitable[Any],
                    started: float, bytes_in: int, args: str | None) -> bytes | NullReply:
        if ident in self.calls:  # the guest numbers its calls: only a tampered one repeats
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            return b"ethe host bridge was given the id of a call still pending"
        pending = _Pending(name, started, bytes_in, args, awaitable)
        self.calls[ident] = pending
        pending.task = start_eagerly(self._ensure_loop(), self._settle(ident, pending, hf, awaitable),
                                     contextvars.copy_context())
        if pending.task.done() and self._settled and self._settled[-1] == ident:
            # It ended in its first step: settled where the loop would have run its task.
            self._settled.pop()
            self._ready.append(ident)
        return NULL_REPLY

    async def _settle(self, ident: int, pending: _Pending, hf: HostFunction,
                      awaitable: Awaitable[Any]) -> None:
        try:
            if hf.timeout_ms is None:
                value = await awaitable
            else:
                left = hf.timeout_ms / 1000 - (time.monotonic() - pending.started)
                value = await asyncio.wait_for(awaitable, max(left, 0.0))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - as in _call: the guest sees only that it failed
            pending.result = _failure(pending.name, hf, exc)
        else:
            pending.result = _encode_result(pending.name, value)
            pending.value = value
            if hf.timeout_ms is not None and time.monotonic() - pending.started > hf.timeout_ms / 1000:
                # It blocked past its timeout without awaiting (wait_for could not cancel it):
                # late is late, as for a synchronous function.
                pending.result = _Encoded(False, _timed_out(pending.name, hf.timeout_ms))
            if hf.detail is not None and pending.result.ok:  # a detail only of what succeeded
                pending.detail = _detail_of(pending.name, hf.detail, value)
        if self.calls.get(ident) is pending:  # not a task that outlived its evaluation
            self._settled.append(ident)
            self._stop_waiting()

    def _add_timer(self, delay_ms: int, repeats: bool) -> int:
        if len(self.timers) >= MAX_PENDING_TIMERS:
            return 0
        ident = self._new_id()
        self._seq += 1
        self.timers[ident] = (self._seq, max(delay_ms, 0) if repeats else None)
        heapq.heappush(self._heap, (time.monotonic() + max(delay_ms, 0) / 1000, self._seq, ident))
        return ident

    def _new_id(self) -> int:
        # Ids stay small integers (the guest gets them as tagged ints); they wrap long before
        # 2^31, and at most MAX_PENDING_TIMERS + the calls in flight are live at once.
        self._next_id = self._next_id % 0x7FFFFFFE + 1
        return self._next_id

    # ----- from the evaluation (between turns) -----------------------------------------------

    @property
    def busy(self) -> bool:
        """Something is still pending: a timer or a host call."""
        return bool(self.timers) or bool(self.calls)

    def next_turn(self) -> Turn | None:
        """The next step for the guest, waiting for it as long as needed (host time, under the
        wall limit); None once nothing is pending, or when the watch holds a stop."""
        watch = self._watch
        while True:
            if watch.poll_stop():
                return None
            if self._settled:
                ident = self._settled.popleft()
                pending = self.calls.pop(ident)
                encoded = pending.result or _Encoded(False, "")
                text = self._deliver(pending.name, pending.started, pending.bytes_in,
                                     pending.args, encoded, pending.detail)
                if text is None:
                    return None
                if not encoded.ok:
                    return Turn(TURN_REJECT, ident, text)
                return Turn(TURN_RESOLVE, ident, _as_value(pending.value, text))
            now = time.monotonic()
            heap = self._heap
            while heap and self.timers.get(heap[0][2], (None,))[0] != heap[0][1]:
                heapq.heappop(heap)  # cleared, or an interval's earlier schedule
            if heap and heap[0][0] <= now:
                _, seq, ident = heapq.heappop(heap)
                _, interval = self.timers[ident]
                if interval is None:
                    del self.timers[ident]
                else:
                    self._seq += 1
                    self.timers[ident] = (self._seq, interval)
                    heapq.heappush(heap, (now + interval / 1000, self._seq, ident))
                self.timers_fired += 1
                return Turn(TURN_FIRE, ident, None)
            if not self.busy:
                return None
            if self._ready:  # where the loop would have run their tasks
                self._settled.extend(self._ready)
                self._ready.clear()
                continue
            until = min(heap[0][0] if heap else float("inf"), watch.wall_deadline)
            self._wait(max(until - now, 0.0))

    def _wait(self, seconds: float) -> None:
        watch = self._watch
        mark = watch.host_started()  # tasks running in the loop are host work too
        try:
            if self._stubborn:
                self._stubborn = {t for t in self._stubborn if not t.done()}
            if self.calls or self._stubborn:  # the loop has work: it runs while we wait
                self._run_loop(seconds)
            else:
                self._wake.wait(seconds)
        finally:
            watch.host_ended(mark)

    def _run_loop(self, seconds: float) -> None:
        """Run the loop until a call settles, a wake comes or `seconds` pass. The loop is run
        and stopped, not given a future to complete: a turn then costs one pass of the loop,
        not a task and two futures."""
        loop = self._loop
        assert loop is not None
        if self.woken or self._settled:
            return
        self._waiting = True
        try:
            # First one pass over what is ready (stop before run_forever): a call that needs
            # no waiting settles in it, without a timer to schedule and cancel.
            loop.stop()
            loop.run_forever()
            if seconds > 0 and not (self.woken or self._settled):
                timer = loop.call_later(seconds, loop.stop)
                try:
                    loop.run_forever()
                finally:
                    timer.cancel()
        finally:
            self._waiting = False

    def _stop_waiting(self) -> None:
        if self._waiting and self._loop is not None:
            self._loop.stop()

    def wake(self) -> None:
        """From any thread: a stop was requested; a wait in progress returns at once."""
        self.woken = True
        self._wake.set()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(self._stop_waiting)

    def begin(self) -> None:
        """A new evaluation: nothing of the last one is pending (see `finish`). Needed only
        after a wake or a timer (the caller checks `woken` and the counters first)."""
        if self.woken:
            self.woken = False
            self._wake.clear()
        self.timers_fired = self.timers_cancelled = 0

    def finish(self) -> bool:
        """The evaluation ended: cancel what is still pending (recorded), clear the schedule.
        True if the guest still holds callbacks or resolvers to forget (TURN_RESET)."""
        if not self.timers and not self.calls:  # the common case (the caller checks it too)
            return False
        had = True
        if self.timers:
            self.timers_cancelled += len(self.timers)
            self.timers.clear()
        self._heap.clear()
        if self.calls:
            self._cancel_calls()
        self._settled.clear()
        self._ready.clear()
        return had

    def _cancel_calls(self) -> None:
        tasks = [p.task for p in self.calls.values() if p.task is not None and not p.task.done()]
        if tasks and self._loop is not None:
            for task in self._cancel_and_wait(tasks):
                # It caught its cancel and goes on: asyncio cannot stop it. It is kept (and
                # runs when the loop next runs), counted by pending_tasks, and given one more
                # cancel and grace by close().
                log.warning("host_task_ignored_cancel", task=repr(task))
                self._stubborn.add(task)
        for pending in self.calls.values():
            awaitable = pending.awaitable
            if inspect.iscoroutine(awaitable) and inspect.getcoroutinestate(awaitable) == inspect.CORO_CREATED:
                awaitable.close()  # cancelled before it started: never awaited
            ended_by_itself = pending.result is not None
            self._record(pending.name, pending.started, pending.bytes_in, 0, pending.args,
                         "the call ended after its evaluation" if ended_by_itself else "cancelled")
        self.calls.clear()

    def _cancel_and_wait(self, tasks: list[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
        """Cancel `tasks` and give them CANCEL_GRACE_S to end; those still running."""
        assert self._loop is not None
        for task in tasks:
            task.cancel()
        _, stuck = self._loop.run_until_complete(asyncio.wait(tasks, timeout=CANCEL_GRACE_S))
        return stuck

    def pending(self) -> Pending:
        return Pending(len(self.timers), len(self.calls), self.pending_tasks())

    def pending_tasks(self) -> int:
        """Tasks of this sandbox's loop not finished (0 once `finish` ran)."""
        if self._loop is None or self._loop.is_closed():
            return 0
        return sum(1 for t in asyncio.all_tasks(self._loop) if not t.done())

    def close(self) -> None:
        self.finish()
        loop = self._loop
        if loop is not None:
            stubborn = [t for t in self._stubborn if not t.done()]
            if stubborn:
                for task in self._cancel_and_wait(stubborn):
                    # Closing the loop leaves it unfinished: said once, here, not by asyncio.
                    log.warning("host_task_abandoned", task=repr(task))
                    task._log_destroy_pending = False  # type: ignore[attr-defined]  # asyncio's own flag
            self._stubborn.clear()
            self._loop = None
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    def _record(self, name: str, started: float, bytes_in: int, bytes_out: int,
                args: str | None, error: str | None, detail: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {"name": name, "ms": round((time.monotonic() - started) * 1000, 3),
                                   "ok": error is None, "bytes_in": bytes_in, "bytes_out": bytes_out}
        if error is not None:
            payload["error"] = error
        if args is not None:
            payload["args"] = args
        if detail is not None:
            payload["detail"] = detail
        self._emit(Event("host_call", payload, time.time()))


def _detail_of(name: str, describe: Callable[[Any], Mapping[str, Any]],
               result: Any) -> dict[str, Any] | None:
    """What a function's `detail` says of its result, if that is a small JSON object; else
    nothing (logged)."""
    try:
        detail = dict(describe(result))
        if len(_ENCODER.encode(detail)) <= 4096:
            return detail
    except Exception as exc:  # noqa: BLE001 - host code: the event goes without its detail
        log.warning("host_function_detail_failed", function=name, error=repr(exc))
    return None


def _message(exc: HostError) -> str:
    return str(exc.args[0]) if exc.args else "host error"


def _failed(name: str, exc: BaseException) -> _Encoded:
    log.warning("host_function_failed", function=name, error=repr(exc))
    return _Encoded(False, f"host function {name!r} failed")


def _failure(name: str, hf: HostFunction, exc: BaseException) -> _Encoded:
    """What the guest sees of an asynchronous function's failure."""
    if isinstance(exc, HostError):
        return _Encoded(False, _message(exc))
    if isinstance(exc, TimeoutError) and hf.timeout_ms is not None:  # wait_for's, in _settle
        return _Encoded(False, _timed_out(name, hf.timeout_ms))
    return _failed(name, exc)


def _timed_out(name: str, timeout_ms: int) -> str:
    return f"host function {name!r} timed out after {timeout_ms} ms"


def _as_value(result: Any, text: bytes) -> bytes | int | None:
    """How a result crosses: a boolean or a 32-bit integer as it is (no JSON to parse), None
    for undefined, else its JSON `text`."""
    if result is True or result is False or (type(result) is int and result in _SMALL_INT):
        return result  # exactly a bool or an int
    return text or None


def _parse_args(text: str) -> list[Any] | None:
    """The arguments' JSON (an array, as the bootstrap sends them), or None if it is not."""
    try:
        value, end = _SCAN(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return None
    if end != len(text):
        return None
    return value if isinstance(value, list) else []


def _encode_result(name: str, value: Any) -> _Encoded:
    kind = type(value)
    if value is None:
        return _Encoded(True, "")
    # The common results without the encoder's machinery; the same JSON it would write.
    if kind is str:
        return _Encoded(True, _quote(value))
    if kind is bool:
        return _Encoded(True, "true" if value else "false")
    if kind is int:
        return _Encoded(True, int.__repr__(value))
    if kind is float and math.isfinite(value):
        return _Encoded(True, float.__repr__(value))
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError):
        return _Encoded(False, _refusal(name, value))
    if too_deep(value, text):  # after encoding: a walk of a wide value costs more than that
        return _Encoded(False, f"host function {name!r} returned a value nested deeper than "
                               f"{JSON_MAX_DEPTH} levels")
    return _Encoded(True, text)


def _refusal(name: str, value: Any) -> str:
    """Why a result could not be encoded: too deep (also a cycle), or not JSON at all."""
    try:
        check_depth(value)
    except ValueError as exc:
        return f"host function {name!r} returned a value {exc}"
    return f"host function {name!r} returned a value that is not JSON"
