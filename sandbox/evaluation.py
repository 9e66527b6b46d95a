"""One evaluation inside a guest instance, in QuickJS's terms: run the request, drain the job
queue, settle a promise, and describe the value or the thrown error through the helpers the
bootstrap captured, and run the event loop (timers, host calls) until nothing is pending, as
`node script.js` runs to completion. The answer is a small typed result; what it means for the session
(limits, rollback, events) is the policy's, in `sandbox.sandbox`.

Every JS value this module gets is handed to a `ValueScope` as it arrives, and the scope frees
it; values a call takes over (`take_string`, `eval_function`) are never handed to one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sandbox.errors import GuestCorrupted
from sandbox.host_bridge import HostBridge
from sandbox.instance import GuestInstance
from sandbox.limits import LimitWatch
from sandbox.quickjs_abi import (
    EVAL_COMPILE_ONLY,
    EVAL_GLOBAL,
    EVAL_MODULE,
    EVAL_STRICT,
    PROMISE_FULFILLED,
    PROMISE_PENDING,
    PROMISE_REJECTED,
    immediate_payload,
    is_exception,
)

# The message of an error whose thrown value the describer could not describe either.
UNDESCRIBABLE = "the thrown value could not be described"


class Request:
    """What to evaluate: a script, a module, a call of a global, or a frozen global to define.
    Made by the constructors below, which know QuickJS's evaluation flags."""

    __slots__ = ("kind", "source", "flags", "filename", "name", "args_json", "checkpoint")

    def __init__(self, kind: str, source: bytes = b"", flags: int = 0, filename: bytes | None = None,
                 name: str = "", args_json: str = "", checkpoint: bool = True) -> None:
        self.kind = kind
        # False for host-side preparation (define_global): the next rollback target stays the
        # state before the execution it prepares.
        self.checkpoint = checkpoint
        self.source = source
        self.flags = flags
        self.filename = filename
        self.name = name
        self.args_json = args_json


def script_request(source: bytes, filename: bytes | None, *, strict: bool) -> Request:
    return Request("script", source, EVAL_GLOBAL | (EVAL_STRICT if strict else 0), filename)


def module_request(source: bytes, filename: bytes | None) -> Request:
    return Request("module", source, EVAL_MODULE | EVAL_COMPILE_ONLY, filename)


def call_request(name: str, args_json: str) -> Request:
    return Request("call", name=name, args_json=args_json)


def define_request(name: str, value_json: str) -> Request:
    # Host-side preparation: no checkpoint of its own (see Request.checkpoint).
    return Request("define", name=name, args_json=value_json, checkpoint=False)


# Slotted, not frozen: a frozen dataclass's __init__ costs twice as much, on every evaluation.
@dataclass(slots=True)
class Value:
    """The evaluation's value, described: `{"type", "preview", "json"?, "json_omitted"?}`."""

    payload: dict[str, Any]


@dataclass(slots=True)
class Thrown:
    """The script threw (or its promise rejected): `{"name", "message", "stack"?}`."""

    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Stopped:
    """A limit stopped the script; the watch says which."""


@dataclass(frozen=True, slots=True)
class Deadlocked:
    """A module awaits a promise that nothing can settle: no timer, host call or job is left."""


STOPPED = Stopped()
DEADLOCKED = Deadlocked()
Result = Value | Thrown | Stopped | Deadlocked


def evaluate(inst: GuestInstance, req: Request, watch: LimitWatch, bridge: HostBridge) -> Result:
    module = 0
    if req.kind == "script":
        value = inst.eval_raw(req.source, req.flags, req.filename)
    elif req.kind == "module":
        module = inst.eval_raw(req.source, req.flags, req.filename)
        if is_exception(module):
            return _thrown(inst, watch)
        value = inst.eval_function(module)  # takes the module function over
    elif req.kind == "call":
        value = inst.call_global(req.name, req.args_json)
    else:  # define
        value = inst.define_frozen_global(req.name, req.args_json)
    if is_exception(value):
        return _thrown(inst, watch)
    immediate = immediate_payload(value)
    if immediate is not None:
        # No pointer: nothing to free, and not a promise (no guest call to ask). The common
        # case (`1 + 1`) opens no scope, and schedules nothing: _run_pending, inline.
        if not _drain_jobs(inst):
            return _thrown(inst, watch)
        if bridge.timers or bridge.calls:
            ended = run_loop(inst, bridge, watch)
            if ended is not None:
                return ended
        return Value(immediate)
    return _value_result(inst, value, module, bridge, watch)


def _value_result(inst: GuestInstance, value: int, module: int, bridge: HostBridge,
                  watch: LimitWatch) -> Result:
    """The result of an evaluation whose value is a pointer (an object, a string, a promise):
    its pending work run, its promise's outcome, or its description."""
    with inst.scope() as scope:
        scope.own(value)
        ended = _run_pending(inst, bridge, watch)
        if ended is not None:
            return ended
        state = inst.promise_state(value)
        pending = False
        if state == PROMISE_REJECTED:
            reason = inst.promise_result(value)
            inst.forget_rejection(value, reason)  # the evaluation's error, not an unhandled one
            return describe_thrown(inst, reason, watch)
        if state == PROMISE_FULFILLED:
            value = scope.own(inst.promise_result(value))
            if module:
                value = scope.own(inst.module_namespace(module))
            immediate = immediate_payload(value)  # only a settled value can be one now
            if immediate is not None:
                return Value(immediate)
        elif state == PROMISE_PENDING:
            if module:  # its top-level await can never resume: nothing is left to settle it
                return DEADLOCKED
            pending = True
        described = inst.describe(value, pending_promise=pending)
        if is_exception(described):
            return _thrown(inst, watch)
        return Value(parse_payload(inst.take_string(described), ("type", "preview")))


def describe_thrown(inst: GuestInstance, thrown: int, watch: LimitWatch) -> Thrown | Stopped:
    """Describe a thrown value (or a rejection's reason), which this call frees."""
    with inst.scope() as scope:
        described = inst.describe_error(scope.own(thrown))
        if is_exception(described):
            scope.own(inst.get_exception())
            if watch.stop is not None:
                return STOPPED
            return Thrown({"name": "InternalError", "message": UNDESCRIBABLE})
        return Thrown(parse_payload(inst.take_string(described), ("name", "message")))


def parse_payload(raw: bytes, required: tuple[str, ...]) -> dict[str, Any]:
    """What the guest's helpers return is untrusted: it must be a JSON object of strings."""
    try:
        payload = json.loads(raw.decode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # The describers never nest deeper than JSON_MAX_DEPTH; a deeper payload is corrupt.
        raise GuestCorrupted(f"the guest returned an unreadable description: {exc}") from exc
    if not isinstance(payload, dict) or not all(isinstance(payload.get(k), str) for k in required):
        raise GuestCorrupted("the guest returned a malformed description")
    if "json_omitted" in payload and not isinstance(payload["json_omitted"], str):
        raise GuestCorrupted("the guest returned a malformed description")
    return payload


def _run_pending(inst: GuestInstance, bridge: HostBridge, watch: LimitWatch) -> Thrown | Stopped | None:
    """The jobs the evaluation queued, then the event loop if anything is scheduled."""
    if not _drain_jobs(inst):
        return _thrown(inst, watch)
    # Two dict checks rather than the `busy` property: this runs on every evaluation.
    return run_loop(inst, bridge, watch) if bridge.timers or bridge.calls else None


def run_loop(inst: GuestInstance, bridge: HostBridge, watch: LimitWatch) -> Thrown | Stopped | None:
    """Give the guest its turns (settled host calls, due timers), each followed by the jobs it
    queued, until nothing is pending (None); or the exception a callback threw, which ends the
    evaluation as an uncaught one ends a Node process; or the stop that ended it."""
    while True:
        turn = bridge.next_turn()
        if turn is None:
            return STOPPED if watch.stop is not None else None
        result = inst.turn(turn.kind, turn.ident, turn.text)
        if is_exception(result):
            return _thrown(inst, watch)
        inst.free_value(result)
        if not _drain_jobs(inst):
            return _thrown(inst, watch)


def _drain_jobs(inst: GuestInstance) -> bool:
    while True:
        ran = inst.run_pending_job()
        if ran == 0:
            return True
        if ran < 0:
            return False


def _thrown(inst: GuestInstance, watch: LimitWatch) -> Thrown | Stopped:
    """The exception pending in the context, described; or the stop that raised it."""
    exc = inst.get_exception()
    if watch.stop is not None:
        with inst.scope() as scope:
            scope.own(exc)
        return STOPPED
    return describe_thrown(inst, exc, watch)
