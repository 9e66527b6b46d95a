"""`Sandbox`: one isolated QuickJS runtime with limits enforced while scripts run.

The evaluation protocol, for every kind of evaluation (script, module, call):

1. arm the limits: the watch's deadlines (graceful layer) and the store's epoch deadline, one
   tick ahead, at which the watch judges the hard backstops;
2. run the guest: evaluate, drain pending jobs, run the event loop until no timer or host call
   is pending (to completion, as `node script.js`), settle a returned promise, describe the
   result inside the guest as one JSON string; then cancel whatever is still scheduled (a
   stopped evaluation leaves nothing behind for the next one);
3. judge the instance: a trap, or a dirty stack guard, means the instance is corrupt: it is
   discarded and the last checkpoint restored (`rolled_back`); no value is ever reported from
   a corrupt instance;
4. checkpoint the state the evaluation left, when it was kept.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import wasmtime

from sandbox.checkpoints import CheckpointCopies
from sandbox.engine import guest_engine, guest_started, guest_stopped
from sandbox.errors import GuestCorrupted, ImageError, SandboxBusy, SandboxClosed
from sandbox.evaluation import (
    STOPPED,
    UNDESCRIBABLE,
    Deadlocked,
    Request,
    Result,
    Thrown,
    Value,
    call_request,
    define_request,
    describe_thrown,
    evaluate,
    module_request,
    script_request,
)
from sandbox.host_bridge import HostBridge, HostFunction, Pending, as_host_function
from sandbox.image import decode_image, encode_image, installation_key
from sandbox.instance import GuestInstance
from sandbox.json_depth import check_depth
from sandbox.limits import Limits, LimitWatch, Stop, heap_full, memory_stop
from sandbox.log import get_logger
from sandbox.memory_layout import STACK_BLOCK, MemoryImage
from sandbox.module_loader import ModuleLoader
from sandbox.module_loader import load_module as answer_load
from sandbox.module_loader import resolve_module as answer_resolve
from sandbox.native_stack import current_thread_is_roomy, on_roomy_stack
from sandbox.outcome import (
    LEVELS,
    ErrorInfo,
    Event,
    Metrics,
    Outcome,
    SessionState,
)
from sandbox.pristine import pristine_image
from sandbox.quickjs_abi import TURN_EXPOSE, TURN_RESET, int_value, is_exception
from sandbox.rejections import MAX_HELD_REJECTIONS
from sandbox.wasm_ffi import GuestTrap
from vocabulary import STATUS_OF_KIND

log = get_logger("sandbox")

EventCallback = Callable[[Event], None]
HostFunctions = Mapping[str, Callable[..., Any] | HostFunction]

KEPT = SessionState("kept")



@dataclass(frozen=True)
class Checkpoint:
    label: str
    image: MemoryImage


class _Hooks:
    """The instance's callbacks, bound to the sandbox's current evaluation."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sb = sandbox
        # The bridge's own methods, not methods calling them: they run on every host call and
        # timer.
        self.call = sandbox._bridge.call
        self.bridge = sandbox._bridge.bridge

    def interrupt(self, stack_pointer: int) -> bool:
        return self._sb._watch.interrupt(stack_pointer)

    def console(self, level: int, text_bytes: int) -> bool:
        return self._sb._watch.account_console(text_bytes)

    def deadline(self) -> bool:
        return self._sb._watch.backstop_due()

    def dropped_job(self, memory_bytes: int) -> bool:
        return self._sb._watch.dropped_job(memory_bytes)

    def console_text(self, level: int, text: str) -> None:
        name = LEVELS[level] if 0 <= level < len(LEVELS) else "log"
        self._sb._emit(Event("console", {"level": name, "text": text}, time.time()))

    def resolve_module(self, specifier: str, referrer: str) -> tuple[bool, str]:
        watch = self._sb._watch
        mark = watch.host_started()  # the loader's time is the host's, not the script's CPU
        try:
            return answer_resolve(self._sb._modules, specifier, referrer)
        finally:
            watch.host_ended(mark)

    def load_module(self, name: str) -> tuple[bool, str]:
        watch = self._sb._watch
        mark = watch.host_started()
        try:
            return answer_load(self._sb._modules, name)
        finally:
            watch.host_ended(mark)


class Sandbox:
    """One QuickJS runtime in its own WebAssembly instance.

    State persists between evaluations. A sandbox runs one evaluation at a time (a second
    concurrent one raises SandboxBusy); sandboxes in different threads run in parallel.

        with Sandbox(limits=Limits(cpu_ms=100, mem_mb=32)) as sb:
            outcome = sb.eval("console.log('hi'); 1 + 1")
            outcome.status, outcome.value, outcome.events

    `functions` offers host functions to the guest as `host.<name>` (see `expose`); timers
    (`setTimeout`, ...) are always there, and an evaluation ends once they have all run.
    `modules` answers the guest's `import`s (`sandbox.module_loader`); without it every import
    is refused.

    A trap (a stack overflow, an uncaught out-of-memory, the hard backstop) discards the
    instance and restores the last checkpoint: the sandbox's initial state, or the state at
    the last `checkpoint()`. With `auto_checkpoint=True` every evaluation that keeps its
    state is checkpointed too, so a trap loses only the evaluation that trapped; that copy
    costs ~13 µs for a fresh sandbox (a trivial evaluation takes ~20 µs without it), and on
    bigger heaps only the pages written are copied (`sandbox.checkpoints`). The supervisor's
    sessions run with it.
    """

    def __init__(self, limits: Limits | None = None, *, on_event: EventCallback | None = None,
                 auto_checkpoint: bool = False, functions: HostFunctions | None = None,
                 modules: ModuleLoader | None = None, _image: MemoryImage | None = None,
                 _label: str = "initial") -> None:
        self.limits = limits or Limits()
        self._modules = modules
        self.auto_checkpoint = auto_checkpoint
        self._on_event = on_event
        self._watch = LimitWatch()
        self._watch.stack_check = self._stack_in_red_zone
        self._bridge = HostBridge(self._watch, self._emit)
        for name, fn in (functions or {}).items():
            self._bridge.functions[name] = as_host_function(name, fn)
        self._hooks = _Hooks(self)
        self._lock = threading.Lock()
        self._owner: int | None = None  # the thread holding _lock, if any
        self._close_pending = False
        self._exclusive_guard = _Exclusive(self)  # holds no state of its own: one serves all uses
        self._closed = False
        self._events: list[Event] = []
        self._event_cb: EventCallback | None = None
        self._evaluations = 0
        if _image is None:
            _image = on_roomy_stack(pristine_image)
        self._instance = on_roomy_stack(
            lambda: GuestInstance(self._hooks, self.limits.memory_bytes, image=_image))
        if self._bridge.functions:
            try:
                on_roomy_stack(self._expose_all)
            except BaseException:
                self._instance.close()
                raise
        self._copies = CheckpointCopies()
        self._take_checkpoint(_label)

    # ----- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pending(self) -> Pending:
        """What is still scheduled (timers, host calls, their asyncio tasks): nothing between
        evaluations, since an evaluation runs to completion and a stop cancels the rest."""
        return self._bridge.pending()

    def close(self) -> None:
        """Release the instance. A running evaluation is cancelled first."""
        if self._closed:
            return
        self._watch.cancel(sticky=True)
        self._bridge.wake()
        if self._owner == threading.get_ident():
            # Called from inside this sandbox's own evaluation (a host function, an event
            # consumer): the lock is this thread's. The evaluation ends cancelled, and the
            # sandbox closes as it returns (_Exclusive.__exit__).
            self._close_pending = True
            return
        with self._lock:
            self._release()

    def _release(self) -> None:
        self._closed = True
        self._bridge.close()
        self._instance.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def cancel(self, *, also_later: bool = False) -> None:
        """Stop the running evaluation (from any thread); it ends `cancelled`, state kept.

        With `also_later`, every later evaluation is cancelled as soon as it starts too: for a
        sandbox about to be closed, where another thread's evaluation may be just starting."""
        self._watch.cancel(sticky=also_later)
        self._bridge.wake()  # a wait for a timer or a host call ends now

    def resume(self) -> None:
        """Forget a cancel made `also_later`: later evaluations run again."""
        self._watch.resume()

    # ----- host functions -------------------------------------------------------------------

    def expose(self, name: str, fn: Callable[..., Any] | HostFunction) -> None:
        """Offer a host function to the guest as `host.<name>` (replacing one of that name).

        Arguments and results cross as JSON. A plain function is a synchronous JS function; one
        returning an awaitable (an `async def`) gives the guest a promise. A `HostError`'s
        message reaches the guest as a `HostError`; any other exception only as "host function
        'name' failed". See `HostFunction` for a timeout and argument logging."""
        hf = as_host_function(name, fn)
        with self._exclusive_guard:
            self._bridge.functions[name] = hf
            on_roomy_stack(lambda: self._expose(name))

    @property
    def functions(self) -> dict[str, HostFunction]:
        """The host functions offered (a copy)."""
        return dict(self._bridge.functions)

    def _expose_all(self) -> None:
        self._bridge.unbind_all()
        for name in self._bridge.functions:
            self._expose(name)

    def _expose(self, name: str) -> None:
        if not self._instance.has_event_loop:
            raise ImageError("this sandbox's image predates timers and host functions: it "
                             "cannot offer host functions")
        # Unarmed, between evaluations: nothing in it can be interrupted or counted.
        slot = _turn_unarmed(self._instance, TURN_EXPOSE, name.encode(), f"define host.{name}")
        if slot is None:
            raise GuestCorrupted(f"the guest gave no slot for host.{name}")
        self._bridge.bind(slot, name)

    @property
    def wall_deadline(self) -> float:
        """When the running evaluation's wall limit ends it, on time.monotonic()'s clock: what
        a synchronous host function that may block (a subprocess, a query) must end by, since
        nothing can interrupt it while it runs."""
        return self._watch.wall_deadline

    def stopping(self) -> bool:
        """True once the running evaluation is cancelled (from any thread) or stopped by a
        limit: a blocking host function polls it to give up early."""
        return self._watch.cancelled

    def count_output(self, size: int) -> bool:
        """Count `size` bytes against the running evaluation's max_output_kb, as console output
        is: what a host function hands the script as output of its own (a command's stdout and
        stderr). False once the cap is crossed: the evaluation then ends as `output_limit`
        when the host function returns."""
        return self._watch.account_output(size)

    # ----- evaluations ----------------------------------------------------------------------

    def eval(self, code: str, *, filename: str = "<input>", strict: bool = False,
             limits: Limits | None = None, on_event: EventCallback | None = None,
             checkpoint_label: str | None = None) -> Outcome:
        """Evaluate a script; its completion value (a settled promise's value) is the result.

        `checkpoint_label` names the checkpoint taken after it when `auto_checkpoint` is on
        (the supervisor passes the execution id); otherwise `checkpoint()` takes one."""
        return self._run(script_request(_encode(code), _filename(filename), strict=strict),
                         limits, on_event, checkpoint_label)

    def eval_module(self, code: str, *, filename: str = "<module>", limits: Limits | None = None,
                    on_event: EventCallback | None = None,
                    checkpoint_label: str | None = None) -> Outcome:
        """Evaluate an ES module (top-level await allowed); the result is its namespace."""
        return self._run(module_request(_encode(code), _filename(filename)), limits, on_event,
                         checkpoint_label)

    def call(self, name: str, *args: Any, limits: Limits | None = None,
             on_event: EventCallback | None = None, checkpoint_label: str | None = None) -> Outcome:
        """Call the global function `name` with JSON-serialisable arguments."""
        try:
            for arg in args:
                check_depth(arg)
            args_json = json.dumps(list(args), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"call arguments must be JSON-serialisable: {exc}") from exc
        return self._run(call_request(name, args_json), limits, on_event, checkpoint_label)

    def define_global(self, name: str, value: Any) -> None:
        """Define a read-only, deeply frozen global from a JSON-serialisable value.

        A script cannot change it; a later define_global of the same name replaces it."""
        try:
            check_depth(value)
            value_json = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"global {name!r} must be JSON-serialisable: {exc}") from exc
        outcome = self._run(define_request(name, value_json), None, None, None)
        if outcome.status != "ok":
            message = outcome.error.message if outcome.error else outcome.status
            raise ValueError(f"could not define global {name!r}: {message}")

    # ----- checkpoints and images ------------------------------------------------------------

    @property
    def checkpoint_label(self) -> str:
        return self._checkpoint.label

    def checkpoint(self, label: str | None = None) -> str:
        """Take a checkpoint of the current state; a later trap rolls back to it."""
        with self._exclusive_guard:
            label = label or f"checkpoint-{self._evaluations}"
            self._take_checkpoint(label)
            return label

    def snapshot(self) -> MemoryImage:
        """A copy of the current state (between evaluations), to encode with `encode_image`
        later, outside whatever lock the caller holds while the sandbox must stay still."""
        with self._exclusive_guard:
            return self._instance.capture()

    def image(self, key: bytes | None = None, context: str = "") -> bytes:
        """The current state as a signed, self-describing image (see sandbox.image)."""
        return encode_image(self.snapshot(), guest_engine().guest_sha256,
                            key if key is not None else installation_key(), context)

    @classmethod
    def from_image(cls, data: bytes, *, key: bytes | None = None, context: str = "",
                   limits: Limits | None = None, on_event: EventCallback | None = None,
                   auto_checkpoint: bool = False, checkpoint_label: str = "image",
                   functions: HostFunctions | None = None,
                   modules: ModuleLoader | None = None) -> Sandbox:
        """A sandbox restored from an image; raises ImageError before touching guest memory
        if the image is tampered with, truncated, or made for another guest, key or context."""
        limits = limits or Limits()
        snapshot = decode_image(data, guest_engine().guest_sha256,
                                key if key is not None else installation_key(), context,
                                max_memory=limits.memory_bytes)
        return cls(limits, on_event=on_event, auto_checkpoint=auto_checkpoint,
                   functions=functions, modules=modules, _image=snapshot, _label=checkpoint_label)

    def clone(self, limits: Limits | None = None, *, on_event: EventCallback | None = None,
              functions: HostFunctions | None = None,
              modules: ModuleLoader | None = None) -> Sandbox:
        """An independent sandbox starting from this one's current state (~0.5 ms), offering
        the same host functions; its initial checkpoint is named after this one's when the
        state is that checkpoint.

        `functions` are offered besides (or instead of, name for name) this one's: a base
        that exposed placeholders gives each clone its own functions in the same slots.
        `modules` replaces this one's loader."""
        with self._exclusive_guard:
            if self._at_checkpoint:
                image, label = self._checkpoint.image, self._checkpoint.label
            else:
                image, label = self._instance.capture(), "clone"
            return Sandbox(limits or self.limits, on_event=on_event,
                           auto_checkpoint=self.auto_checkpoint,
                           functions={**self._bridge.functions, **(functions or {})},
                           modules=modules if modules is not None else self._modules,
                           _image=image, _label=label)

    def memory_size(self) -> int:
        return self._instance.memory_size()

    # ----- internals ------------------------------------------------------------------------

    def _take_checkpoint(self, label: str, size: int | None = None) -> None:
        self._checkpoint = Checkpoint(label, self._copies.capture(self._instance, size))
        # False once an evaluation changes the state without a checkpoint after it.
        self._at_checkpoint = True

    def _stack_in_red_zone(self, sp: int) -> bool:
        return self._instance.stack_in_red_zone(sp)

    def _emit(self, event: Event) -> None:
        self._events.append(event)
        cb = self._event_cb
        if cb is not None:
            watch = self._watch
            mark = watch.host_started()  # the consumer's time is not the script's CPU time
            try:
                cb(event)
            except Exception as exc:  # reported as the evaluation's failure
                # While the script runs this stops it; once it has ended (terminal and system
                # events) the stop is never read: the outcome stands.
                log.warning("event_consumer_failed", error=repr(exc))
                watch.fail(f"the event consumer failed: {type(exc).__name__}: {exc}")
            finally:
                watch.host_ended(mark)

    def _run(self, request: Request, limits: Limits | None, on_event: EventCallback | None,
             checkpoint_label: str | None) -> Outcome:
        with self._exclusive_guard:
            if current_thread_is_roomy():  # on_roomy_stack's own first step, without its calls
                return self._run_locked(request, limits or self.limits, on_event or self._on_event,
                                        checkpoint_label)
            return on_roomy_stack(lambda: self._run_locked(request, limits or self.limits,
                                                           on_event or self._on_event,
                                                           checkpoint_label))

    def _run_locked(self, request: Request, limits: Limits, on_event: EventCallback | None,
                    label: str | None) -> Outcome:
        if limits.mem_mb != self.limits.mem_mb:
            raise ValueError("mem_mb is fixed when the sandbox is created")
        self._evaluations += 1
        self._events = []
        self._event_cb = on_event
        inst = self._instance
        watch = self._watch
        bridge = self._bridge
        inst.arm_deadline(1)
        watch.begin(limits)
        if bridge.woken or bridge.timers_fired or bridge.timers_cancelled:  # rarely: no call
            bridge.begin()
        trap: GuestTrap | None = None
        result: Result = STOPPED
        counter = inst.counter_address
        guest_started(counter)
        try:
            result = evaluate(inst, request, watch, bridge)
            if inst.rejections.any:
                self._report_rejections(inst)
        except GuestTrap as exc:
            trap = exc
        except GuestCorrupted as exc:
            trap = GuestTrap(None, str(exc))
        finally:
            guest_stopped(counter)
            # Nothing of this evaluation stays scheduled: its tasks are cancelled (and recorded).
            guest_holds_callbacks = bridge.finish() if bridge.timers or bridge.calls else False
        wall_ms, cpu_ms = watch.end()
        peak = inst.memory_size()

        stop, rollback_reason = _stop_and_rollback(inst, trap, watch.stop, limits, peak)

        # What the evaluation produced, before deciding the session's fate: a memory limit
        # rolls back too (what the script allocated may still fill the heap).
        value: dict[str, Any] | None = None
        error: ErrorInfo | None = None
        payload: dict[str, Any] | None = None
        if stop is not None:
            error = ErrorInfo(stop.kind, _stop_name(stop), stop.message,  # type: ignore[arg-type]
                              limit={"name": stop.name, "value": stop.value, "used": stop.used})
        elif isinstance(result, Value):
            value = payload = result.payload
        elif isinstance(result, Thrown):
            payload = result.payload
            error = _error_from_exception(payload, limits, peak)
            if error.kind == "memory_limit" and rollback_reason is None:
                rollback_reason = "the script ran out of memory"
        elif isinstance(result, Deadlocked):
            error = ErrorInfo("deadlock", "DeadlockError", DEADLOCK_MESSAGE)
            payload = {"name": error.name, "message": error.message}
        else:  # Stopped is only ever the answer when the watch holds a stop
            raise AssertionError("an evaluation stopped without a stop")

        # The session's fate is settled (and its system event recorded) before the terminal
        # event, so the terminal event is always the last one of an evaluation.
        if rollback_reason is not None:
            state = self._roll_back(rollback_reason)
        else:
            if stop is not None:
                inst.reset_uncatchable()
            if guest_holds_callbacks:
                self._forget_callbacks(inst)
            state = KEPT
            if self.auto_checkpoint and request.checkpoint:
                self._take_checkpoint(label or f"eval-{self._evaluations}", peak)
            else:
                self._at_checkpoint = False

        self._emit(_terminal_event(error, payload))
        status = "ok" if error is None else STATUS_OF_KIND[error.kind]
        metrics = Metrics(round(wall_ms, 3), round(cpu_ms, 3), None, peak,
                          watch.output_bytes, len(self._events), watch.host_calls,
                          bridge.timers_fired, bridge.timers_cancelled)
        self._event_cb = None
        return Outcome(status, value, error, self._events, metrics, state)

    def _forget_callbacks(self, inst: GuestInstance) -> None:
        """The guest's timer callbacks and host call resolvers of the evaluation that ended go
        (unarmed: the watch has ended, so nothing in it is interrupted)."""
        _turn_unarmed(inst, TURN_RESET, None, "forget its pending timers")

    def _roll_back(self, reason: str) -> SessionState:
        old = self._instance
        checkpoint = self._checkpoint
        self._instance = GuestInstance(self._hooks, self.limits.memory_bytes, image=checkpoint.image)
        self._at_checkpoint = True
        old.close()
        # A function exposed after the checkpoint was taken is offered again.
        self._expose_all()
        log.info("sandbox_rolled_back", reason=reason, checkpoint=checkpoint.label)
        self._emit(Event("system", {"level": "warn",
                                      "message": f"{reason}; state rolled back to checkpoint "
                                                 f"{checkpoint.label}"}, time.time()))
        return SessionState("rolled_back", checkpoint.label)

    def _report_rejections(self, inst: GuestInstance) -> None:
        """A system event for each promise rejected without a handler by the end of the
        evaluation (as Node and browsers report them, "Uncaught (in promise)")."""
        held, counted = inst.take_rejections()
        for promise, reason in held:
            with inst.scope() as scope:
                scope.own(promise)
                if self._watch.stop is not None:  # stopped: the describer would not run
                    scope.own(reason)
                    counted += 1
                    continue
            described = describe_thrown(inst, reason, self._watch)
            if not isinstance(described, Thrown):
                counted += 1
                continue
            payload = described.payload
            name = payload["name"]
            # The describer names a thrown non-Error "Uncaught": "Uncaught (in promise) 42".
            text = payload["message"] if name in ("", "Uncaught") else f"{name}: {payload['message']}"
            self._emit(Event("system", {"level": "warn", "message": f"Uncaught (in promise) {text}"},
                             time.time()))
        if counted:
            self._emit(Event("system", {"level": "warn", "message": (
                f"{counted} promise(s) rejected without a handler not described (more than "
                f"{MAX_HELD_REJECTIONS} at once, or the evaluation was stopped)")}, time.time()))


class _Exclusive:
    """One evaluation at a time: a second caller gets SandboxBusy at once, never waits."""

    __slots__ = ("_sb",)

    def __init__(self, sb: Sandbox) -> None:
        self._sb = sb

    def __enter__(self) -> None:
        sb = self._sb
        if not sb._lock.acquire(blocking=False):
            raise SandboxBusy("another evaluation is running in this sandbox")
        if sb._closed:
            sb._lock.release()
            raise SandboxClosed("the sandbox is closed")
        sb._owner = threading.get_ident()

    def __exit__(self, *exc: object) -> None:
        sb = self._sb
        sb._owner = None
        try:
            if sb._close_pending:  # close() was called from inside (see Sandbox.close)
                sb._release()
        finally:
            sb._lock.release()


def _turn_unarmed(inst: GuestInstance, kind: int, text: bytes | None, what: str) -> int | None:
    """A turn the host gives the guest between evaluations: its result if it is an integer;
    GuestCorrupted if it throws."""
    result = inst.turn(kind, 0, text)
    if is_exception(result):
        inst.free_value(inst.get_exception())
        raise GuestCorrupted(f"the guest could not {what}")
    inst.free_value(result)
    return int_value(result)


def _encode(code: str) -> bytes:
    if not isinstance(code, str):
        raise TypeError("code must be a str")
    # Lone surrogates survive as WTF-8, which QuickJS reads back as the same code units.
    return code.encode("utf-8", "surrogatepass")


def _filename(name: str) -> bytes:
    return name.encode("utf-8", "replace").replace(b"\0", b"?")


def _stop_and_rollback(inst: GuestInstance, trap: GuestTrap | None, stop: Stop | None,
                       limits: Limits, memory: int) -> tuple[Stop | None, str | None]:
    """What stopped the evaluation, and why the instance may not go on (None: it may)."""
    if stop is None and trap is None and heap_full(memory, limits) and inst.exception_waiting():
        # The script ran to its end after the engine dropped a job it could not queue: what
        # it computed is missing that job's work.
        inst.free_value(inst.get_exception())
        stop = memory_stop(limits, memory)
    if trap is not None:
        return stop or _stop_for_trap(trap, inst), f"the instance trapped ({_trap_label(trap)})"
    if not inst.guard_intact():
        return (Stop("stack_overflow", "stack", STACK_BLOCK // 1024, STACK_BLOCK // 1024,
                     "Maximum call stack size exceeded (the stack guard region was overwritten)"),
                "the stack guard region was overwritten")
    if stop is not None and stop.kind == "stack_overflow":
        return stop, "the stack ran into its red zone"
    if stop is not None and stop.kind == "memory_limit":
        return stop, "the script ran out of memory (the engine dropped a job it could not queue)"
    if stop is not None and inst.jobs_pending():
        return stop, "the stopped script left pending jobs"
    return stop, None


def _terminal_event(error: ErrorInfo | None, payload: Any) -> Event:
    if error is None:
        return Event("value", payload, time.time())
    if STATUS_OF_KIND[error.kind] == "error":  # the script's own: thrown, or deadlocked
        return Event("exception", payload, time.time())
    return Event("limit", {"kind": error.kind, "message": error.message, "limit": error.limit}, time.time())


def _stop_for_trap(trap: GuestTrap, inst: GuestInstance) -> Stop:
    code = trap.code
    # A shadow stack that ran out of its block shows as a wild memory access: the stack
    # pointer left below the block, or the guard regions overwritten, say which it was.
    if (code == wasmtime.TrapCode.STACK_OVERFLOW or inst.stack_pointer_escaped()
            or not inst.guard_intact()):
        return Stop("stack_overflow", "stack", STACK_BLOCK // 1024, STACK_BLOCK // 1024,
                    "Maximum call stack size exceeded")
    return Stop("internal", "trap", 0, 0, f"the guest crashed: {_trap_label(trap)}")


def _trap_label(trap: GuestTrap) -> str:
    if trap.code is not None:
        return trap.code.name.lower().replace("_", " ")
    # A host error reads "error while executing at wasm backtrace: ... Caused by: <cause>":
    # the cause is what a reader needs.
    _, _, cause = trap.message.rpartition("Caused by:")
    lines = [line.strip() for line in cause.splitlines() if line.strip()]
    return lines[0] if lines else "unknown trap"


DEADLOCK_MESSAGE = ("the module awaits a promise that nothing can settle: no timer, host call or "
                    "job is pending")

_STOP_NAMES = {
    "timeout": "TimeoutError",
    "cpu_limit": "CpuLimitError",
    "stack_overflow": "RangeError",
    "output_limit": "OutputLimitError",
    "event_limit": "EventLimitError",
    "host_call_limit": "HostCallLimitError",
    "host_bytes_limit": "HostBytesLimitError",
    "cancelled": "CancelledError",
    "memory_limit": "InternalError",  # what QuickJS throws when it runs out of memory
    "internal": "InternalError",
}


def _stop_name(stop: Stop) -> str:
    return _STOP_NAMES.get(stop.kind, "InternalError")




def _error_from_exception(payload: dict[str, Any], limits: Limits, memory: int) -> ErrorInfo:
    name, message = payload["name"], payload["message"]
    stack = payload.get("stack") if isinstance(payload.get("stack"), str) else None
    # With the heap exhausted QuickJS may throw `null` (it cannot allocate the error object),
    # and describing the exception may itself fail for want of memory.
    starved = heap_full(memory, limits) and (
        (name == "Uncaught" and message == "null") or message == UNDESCRIBABLE)
    if (name == "InternalError" and message == "out of memory") or starved:
        stop = memory_stop(limits, memory)
        return ErrorInfo("memory_limit", name, stop.message, stack,
                         {"name": stop.name, "value": stop.value, "used": stop.used})
    return ErrorInfo("exception", name, message, stack)
