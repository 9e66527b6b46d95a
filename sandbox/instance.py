"""One guest instance: a wasmtime store holding QuickJS, driven through its C API.

This is the only module that calls QuickJS and owns the JS value handles it returns. It
offers the sandbox a small set of operations (evaluate a script or module, call a helper,
drain jobs, read a described result, free a value) and the memory-level mechanics of
checkpoints: capture, restore into a fresh instance, guard check. What it builds on:
`quickjs_abi` (tags, flags, signatures), `memory_layout` (addresses, images), `stack_guards`,
`memory_copy`, `rejections`, and `guest_setup` for a fresh instance.

Host callbacks (the interrupt handler and the console) are forwarded to a `HostHooks` object;
the instance itself holds no policy.
"""

from __future__ import annotations

import ctypes
import struct
from functools import cache
from typing import Any, Protocol

import wasmtime

from sandbox.engine import guest_engine
from sandbox.errors import GuestCorrupted, ImageError
from sandbox.guest_setup import initialise
from sandbox.memory_copy import Copy, copy_in, copy_out, copy_plan
from sandbox.memory_layout import ARGV_SLOTS, DEFAULT_FILENAME, PAGE, SHORT_TEXT, Layout, MemoryImage
from sandbox.quickjs_abi import (
    CFUNCTION_TYPE,
    EVAL_COMPILE_ONLY,
    EVAL_MODULE,
    EXCEPTION,
    EXPORTS,
    INTERRUPT_TYPE,
    LOADER_TYPE,
    NORMALIZE_TYPE,
    NULL,
    NULL_REPLY,
    OP_CALL,
    REJECTION_TYPE,
    TAG_BOOL,
    TAG_INT,
    TAG_STRING,
    TAG_STRING_ROPE,
    UNDEFINED,
    NullReply,
    StopScript,
    is_exception,
    is_string,
)
from sandbox.rejections import RejectionTracker
from sandbox.stack_guards import StackGuards
from sandbox.string_layout import STRINGS
from sandbox.value_scope import ValueScope
from sandbox.wasm_ffi import (
    GlobalI32,
    RawFunc,
    arg_slots,
    export_func_handle,
    host_func,
    install_funcs,
    memory_data_size,
    memory_ref,
    new_args,
    on_epoch_deadline,
    set_epoch_deadline,
    set_global_i32,
    store_context,
    wrapped_export,
)
from sandbox.wasm_patch import STACK_POINTER_EXPORT, TABLE_EXPORT


class HostHooks(Protocol):
    """What the instance asks its owner while the guest runs."""

    def interrupt(self, stack_pointer: int) -> bool:
        """True stops the script (QuickJS throws an uncatchable 'interrupted')."""

    def dropped_job(self, memory_bytes: int) -> bool:
        """An exception waits in the context while the script runs on: QuickJS dropped a job
        it could not queue (see GuestInstance.exception_waiting). True stops the script."""

    def deadline(self) -> bool:
        """At each epoch tick while the guest runs: True traps it (the hard backstop)."""

    def console(self, level: int, text_bytes: int) -> bool:
        """Account for a console line of `text_bytes` bytes. False: a cap was crossed."""

    def console_text(self, level: int, text: str) -> None:
        """Record the console line (called only when console() allowed it)."""

    def call(self, slot: int, args_json: str, ident: int) -> HostReply:
        """The guest called a host function (`hostBridge(OP_CALL, slot, argsJSON, id)`)."""

    def bridge(self, op: int, a: int | str | None, b: int | str | None,
               c: int | str | None) -> HostReply:
        """The guest called its host bridge (`hostBridge(op, a, b, c)` in the bootstrap) for
        anything but a well-formed call."""

    def resolve_module(self, specifier: str, referrer: str) -> tuple[bool, str]:
        """An import of `specifier` from `referrer`: (True, the resolved name) or (False, why
        it is refused: the message of the guest's error)."""

    def load_module(self, name: str) -> tuple[bool, str]:
        """The source of a resolved module: (True, source) or (False, why not)."""


# What the bridge answers: a string (UTF-8 bytes), a boolean or a 32-bit integer for the guest,
# None for undefined, NULL_REPLY for null, or STOP_SCRIPT: a limit was crossed, the script
# stops (uncatchable).
HostReply = bytes | bool | int | None | NullReply | StopScript


_i64 = struct.Struct("<q").unpack_from
_four_values = struct.Struct("<4q").unpack_from


# The first argument of a host function's call (OP_CALL as a tagged integer), and the tags of a
# string argument.
_CALL = (TAG_INT << 32) | OP_CALL
_STRING_TAGS = frozenset({TAG_STRING, TAG_STRING_ROPE})
# A string argument the guest ran out of memory converting (its exception is pending).
_OOM = MemoryError()


def _int32(value: int) -> int:
    """A tagged integer's value (its low 32 bits, signed)."""
    n = value & 0xFFFFFFFF
    return n - (1 << 32) if n >= 1 << 31 else n


def _memory_view(base: int, size: int) -> memoryview:
    return memoryview((ctypes.c_char * size).from_address(base)).cast("B")


def _plain_value(value: bool | int | None) -> int:
    """The JSValue of undefined (None), a boolean or a 32-bit integer: made by the host alone."""
    if value is None:
        return UNDEFINED
    if value is True or value is False:
        return (TAG_BOOL << 32) | int(value)
    return (TAG_INT << 32) | (value & 0xFFFFFFFF)


@cache
def _arg_slots() -> dict[str, int]:
    """Argument-array sizes of the exports the host calls, checked once per process."""
    types = {e.name: e.type for e in guest_engine().module.exports}
    slots = {}
    for name in EXPORTS:
        ty = types.get(name)
        if not isinstance(ty, wasmtime.FuncType):
            raise GuestCorrupted(f"the guest does not export the function {name}")
        slots[name] = arg_slots(ty)
    return slots


class GuestInstance:
    """QuickJS in one wasmtime store. Driven by one thread at a time."""

    def __init__(self, hooks: HostHooks, memory_limit: int, image: MemoryImage | None = None) -> None:
        eng = guest_engine()
        self._hooks = hooks
        self.store = wasmtime.Store(eng.engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        self.store.set_limits(memory_size=memory_limit)
        # Set-up runs without deadline; every evaluation sets its own.
        self.store.set_epoch_deadline(2**62)
        on_epoch_deadline(self.store, hooks.deadline)
        instance = eng.linker.instantiate(self.store, eng.module)
        self._ctx_ptr = store_context(self.store)

        def export(name: str) -> Any:
            item = wrapped_export(self.store, instance, name)
            if item is None:
                raise GuestCorrupted(f"the guest does not export {name}")
            return item

        def export_func(name: str) -> Any:
            item = export_func_handle(self.store, instance, name)
            if item is None:
                raise GuestCorrupted(f"the guest does not export the function {name}")
            return item

        self.args = new_args(8)
        self._nested_args = new_args(8)
        slots = _arg_slots()
        args, nested_args = self.args, self._nested_args
        store, outer = self.store, self

        class Exports(dict):  # bound on first use: a clone that evaluates little binds little
            def __missing__(self, name: str) -> RawFunc:
                func = self[name] = RawFunc(store, export_func(name), args, slots[name], name)
                return func

        class NestedExports(dict):  # for calls made from inside a host callback
            def __missing__(self, name: str) -> RawFunc:
                func = self[name] = outer._f[name].with_args(nested_args)
                return func

        self._f: dict[str, RawFunc] = Exports()
        self._nf: dict[str, RawFunc] = NestedExports()
        self.memory: wasmtime.Memory = export("memory")
        self._memory_ref = memory_ref(self.memory)
        self._base_addr = ctypes.addressof(self.memory.data_ptr(self.store).contents)
        # The guest's memory as Python reads it inside callbacks, without a ctypes call per
        # read; memory only grows, and a read past its end re-makes it (_view_to).
        self._view = _memory_view(self._base_addr, self.memory_size())
        self._rest_sp = 0  # the stack pointer between evaluations (see set_stack_pointer)
        self._plan: tuple[int, tuple[Copy, ...]] = (-1, ())
        self.interrupt_calls = 0
        self._probe: RawFunc | None = None
        self._probe_args = new_args(1)
        self._table: wasmtime.Table = export(TABLE_EXPORT)
        self._sp_global: wasmtime.Global = export(STACK_POINTER_EXPORT)
        self._sp_reader = GlobalI32(self.store, self._sp_global)
        self.rejections = RejectionTracker(self._nested_dup, self._nested_free)

        interrupt = host_func(self.store, INTERRUPT_TYPE, self._on_interrupt)
        console = host_func(self.store, CFUNCTION_TYPE, self._on_console)
        rejection = host_func(self.store, REJECTION_TYPE, self._on_rejection)
        bridge = host_func(self.store, CFUNCTION_TYPE, self._on_bridge)
        normalize = host_func(self.store, NORMALIZE_TYPE, self._on_normalize)
        loader = host_func(self.store, LOADER_TYPE, self._on_load)
        # Always in this order (guest_setup's *_SLOT): an image's runtime refers to these slots.
        base = install_funcs(self.store, self._table,
                             [interrupt, console, rejection, bridge, normalize, loader])

        if image is None:
            self.layout = initialise(self, base)  # its guard regions are filled already
        else:
            self._restore(image, base)
        lay = self.layout
        # Absolute host address of the interrupt counter (0: unknown), for the ticker's pokes.
        self.counter_address = self._base_addr + lay.interrupt_counter if lay.interrupt_counter else 0

    def adopt_layout(self, layout: Layout, fill_old_stack: bool = False) -> None:
        """Use `layout` from now on, and fill its guard regions (the old stack region too when
        it may hold anything: a restored instance's fresh memory is already zero there)."""
        self.layout = layout
        self._guards = StackGuards(self._base_addr, layout)
        self._guards.fill(old_stack=fill_old_stack)

    # ----- memory -----------------------------------------------------------------------

    def memory_size(self) -> int:
        return memory_data_size(self._ctx_ptr, self._memory_ref)

    def arm_deadline(self, ticks: int) -> None:
        """Let the store reach its epoch deadline `ticks` ticks from now."""
        set_epoch_deadline(self._ctx_ptr, ticks)

    def base_address(self) -> int:
        """Where linear memory starts in this process (fixed for the instance's life: the
        engine is configured with memory_may_move=False)."""
        return self._base_addr

    def write(self, addr: int, data: bytes) -> None:
        ctypes.memmove(self._base_addr + addr, data, len(data))

    def read(self, addr: int, size: int) -> bytes:
        return ctypes.string_at(self._base_addr + addr, size)

    def read_u32(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), "little")

    def stack_pointer(self) -> int:
        return self._sp_reader.get()

    def set_stack_pointer(self, value: int) -> None:
        # Only the host moves the stack pointer between evaluations; every guest call returns
        # it where it found it (a trap does not, and its instance never runs again). So this
        # value is the stack pointer at every quiescent point, without asking the engine.
        set_global_i32(self.store, self._sp_global, value)
        self._rest_sp = value

    def guard_intact(self) -> bool:
        """False if the shadow stack ever ran into its guard regions: the instance is corrupt."""
        return self._guards.intact()

    def stack_pointer_escaped(self) -> bool:
        return self.layout.stack_pointer_escaped(self.stack_pointer())

    def stack_in_red_zone(self, sp: int) -> bool:
        return self.layout.in_red_zone(sp)

    # ----- raw calls ----------------------------------------------------------------------

    def call_i32(self, name: str, *params: int) -> int:
        a = self.args
        for i, p in enumerate(params):
            a[i].i32 = p
        self._f[name]()
        return a[0].i32

    def malloc(self, size: int) -> int:
        return self.call_i32("malloc", size) & 0xFFFFFFFF

    def free(self, ptr: int) -> None:
        self.call_i32("free", ptr)

    def scope(self) -> ValueScope:
        """A scope that frees the values handed to it (`with inst.scope() as scope:`)."""
        return ValueScope(self.free_value)

    def free_value(self, value: int) -> None:
        if value >> 32 < 0:  # only heap values are reference counted
            a = self.args
            a[0].i32 = self.layout.ctx
            a[1].i64 = value
            self._f["JS_FreeValue"]()

    # ----- checkpoints --------------------------------------------------------------------

    def capture(self, into: bytearray | None = None, size: int | None = None) -> MemoryImage:
        """A checkpoint; only valid between evaluations (no guest frame live).

        With `into` (at least `capture_size()` bytes), the bytes are copied into that buffer
        and the image views it. The caller must not reuse the buffer while the image is in
        use. `size`, when the caller already knows the memory size (it cannot change between
        evaluations).
        """
        if size is None:
            size = self.memory_size()
        return MemoryImage(copy_out(self.copy_plan(size), into), size, self._rest_sp, self.layout)

    def rest_stack_pointer(self) -> int:
        """The stack pointer between evaluations (what an image records)."""
        return self._rest_sp

    def copy_plan(self, size: int) -> tuple[Copy, ...]:
        """(offset in the image, host address, length) of each kept range of a memory of
        `size` bytes (kept for the last size asked: it changes only when memory grows)."""
        if self._plan[0] != size:
            self._plan = (size, copy_plan(self._base_addr, self.layout, size))
        return self._plan[1]

    def capture_size(self, size: int | None = None) -> int:
        return self.layout.kept_bytes(self.memory_size() if size is None else size)

    def _restore(self, image: MemoryImage, table_base: int) -> None:
        if table_base != image.layout.table_base:
            raise GuestCorrupted("host functions landed at other table slots than in the image")
        current = self.memory_size()
        if image.size % PAGE:
            raise ImageError("the image's memory size is not a whole number of wasm pages")
        if image.size > current:
            try:
                self.memory.grow(self.store, (image.size - current) // PAGE)
            except wasmtime.WasmtimeError as exc:
                raise ImageError(f"the image needs {image.size} bytes of memory, more than the "
                                 "instance may have") from exc
        if not image.fits(self.memory_size()):
            raise ImageError("the image does not fit the memory it is restored into")
        copy_in(self._base_addr, image)
        self.set_stack_pointer(image.stack_pointer)
        self.adopt_layout(image.layout)

    # ----- the QuickJS API ----------------------------------------------------------------

    def eval_raw(self, source: bytes, flags: int, filename: bytes | None = None) -> int:
        """JS_Eval. Returns the JSValue (possibly the exception marker)."""
        lay = self.layout
        small = len(source) < SHORT_TEXT
        buf = lay.source if small else self.malloc(len(source) + 1)
        if buf == 0:
            # The guest cannot even hold the source: behave as QuickJS does when it runs out.
            return EXCEPTION
        fname = lay.filename
        fbuf = 0
        if filename is not None and filename != DEFAULT_FILENAME:
            fbuf = self.malloc(len(filename) + 1)
            self.write(fbuf, filename + b"\0")
            fname = fbuf
        self.write(buf, source + b"\0")
        a = self.args
        a[0].i32, a[1].i32, a[2].i32, a[3].i32, a[4].i32 = lay.ctx, buf, len(source), fname, flags
        try:
            self._f["JS_Eval"]()
            return a[0].i64
        finally:
            if not small:
                self.free(buf)
            if fbuf:
                self.free(fbuf)

    def call_value(self, func: int, argv: list[int], this: int = UNDEFINED) -> int:
        lay = self.layout
        a = self.args
        argv_ptr = owned = 0
        if argv:
            # The host's calls do not nest (callbacks never call JS_Call), so one reserved
            # argument area serves them all; a longer list gets its own.
            if len(argv) <= ARGV_SLOTS:
                argv_ptr = lay.source + SHORT_TEXT
            else:
                argv_ptr = owned = self.malloc(8 * len(argv))
                if argv_ptr == 0:
                    return EXCEPTION
            struct.pack_into(f"<{len(argv)}q", self._view_to(argv_ptr + 8 * len(argv)), argv_ptr, *argv)
        try:
            a[0].i32, a[1].i64, a[2].i64, a[3].i32, a[4].i32 = lay.ctx, func, this, len(argv), argv_ptr
            self._f["JS_Call"]()
            return a[0].i64
        finally:
            if owned:
                self.free(owned)

    def new_string(self, text: bytes) -> int:
        # Between the host's calls the short-text buffer is free (an evaluation's source has
        # been parsed by the time anything else runs).
        short = len(text) < SHORT_TEXT
        buf = self.layout.source if short else self.malloc(len(text) + 1)
        if buf == 0:
            return EXCEPTION
        self.write(buf, text + b"\0")
        a = self.args
        a[0].i32, a[1].i32, a[2].i32 = self.layout.ctx, buf, len(text)
        self._f["JS_NewStringLen"]()
        value = a[0].i64
        if not short:
            self.free(buf)
        return value

    def new_c_function(self, table_index: int, name: bytes, length: int) -> int:
        """A JS function calling the host function at `table_index` (JS_CFUNC_generic)."""
        ptr = self.malloc(len(name) + 1)
        if ptr == 0:
            raise GuestCorrupted("the guest could not allocate a function name")
        self.write(ptr, name + b"\0")
        a = self.args
        a[0].i32, a[1].i32, a[2].i32, a[3].i32, a[4].i32, a[5].i32 = (
            self.layout.ctx, table_index, ptr, length, 0, 0)
        self._f["JS_NewCFunction2"]()
        value = a[0].i64
        self.free(ptr)  # QuickJS made an atom of it
        return value

    def get_index(self, value: int, index: int) -> int:
        a = self.args
        a[0].i32, a[1].i64, a[2].i32 = self.layout.ctx, value, index
        self._f["JS_GetPropertyUint32"]()
        return a[0].i64

    def get_exception(self) -> int:
        a = self.args
        a[0].i32 = self.layout.ctx
        self._f["JS_GetException"]()
        return a[0].i64

    def exception_waiting(self) -> bool:
        """Whether an exception is pending in the context when no call failed. QuickJS ignores
        JS_EnqueueJob's result where a settled promise queues its reactions (`then` on a
        settled promise, settling a promise that has reactions): with the heap full the job is
        dropped, and the out-of-memory error it threw stays pending while the script runs on,
        its allocations failing and freeing, never ending at the memory limit on its own.

        Asked between calls and from the interrupt handler, which may come inside any other
        call, nested or not: so it has an argument array of its own."""
        probe = self._probe
        if probe is None:
            probe = self._probe = self._f["JS_HasException"].with_args(self._probe_args)
        slot = self._probe_args[0]
        slot.i32 = self.layout.ctx
        probe()
        return slot.i32 != 0

    def reset_uncatchable(self) -> None:
        a = self.args
        a[0].i32 = self.layout.ctx
        self._f["JS_ResetUncatchableError"]()

    def run_pending_job(self) -> int:
        """1 a job ran, 0 none pending, -1 a job threw (the exception is pending)."""
        a = self.args
        a[0].i32, a[1].i32 = self.layout.rt, self.layout.scratch
        self._f["JS_ExecutePendingJob"]()
        return a[0].i32

    def jobs_pending(self) -> bool:
        a = self.args
        a[0].i32 = self.layout.rt
        self._f["JS_IsJobPending"]()
        return a[0].i32 != 0

    def promise_state(self, value: int) -> int:
        """PROMISE_* for a promise, -1 for anything else."""
        if value >> 32 != -1:  # TAG_OBJECT
            return -1
        a = self.args
        a[0].i32, a[1].i64 = self.layout.ctx, value
        self._f["JS_PromiseState"]()
        return a[0].i32

    def promise_result(self, value: int) -> int:
        a = self.args
        a[0].i32, a[1].i64 = self.layout.ctx, value
        self._f["JS_PromiseResult"]()
        return a[0].i64

    def module_namespace(self, module: int) -> int:
        a = self.args
        a[0].i32, a[1].i32 = self.layout.ctx, module & 0xFFFFFFFF
        self._f["JS_GetModuleNamespace"]()
        return a[0].i64

    def eval_function(self, value: int) -> int:
        a = self.args
        a[0].i32, a[1].i64 = self.layout.ctx, value
        self._f["JS_EvalFunction"]()
        return a[0].i64

    def take_string(self, value: int) -> bytes:
        """The UTF-8 (WTF-8) bytes of a string JSValue; frees the value."""
        lay = self.layout
        a = self.args
        a[0].i32, a[1].i32, a[2].i64, a[3].i32 = lay.ctx, lay.scratch, value, 0
        self._f["JS_ToCStringLen2"]()
        ptr = a[0].i32 & 0xFFFFFFFF
        try:
            if ptr == 0:
                raise GuestCorrupted("a helper did not return a string")
            size = self.read_u32(lay.scratch)
            data = self.read(ptr, size)
            a[0].i32, a[1].i32 = lay.ctx, ptr
            self._f["JS_FreeCString"]()
            return data
        finally:
            self.free_value(value)

    def describe(self, value: int, pending_promise: bool = False) -> int:
        """The describe helper's JSON string (a JSValue), or the exception marker."""
        argv = [value, 0] if pending_promise else [value]
        return self.call_value(self.layout.helpers[0], argv)

    def describe_error(self, value: int) -> int:
        return self.call_value(self.layout.helpers[1], [value])

    def call_global(self, name: str, args_json: str) -> int:
        return self._call_with_strings(self.layout.helpers[2], name, args_json)

    def define_frozen_global(self, name: str, value_json: str) -> int:
        return self._call_with_strings(self.layout.helpers[3], name, value_json)

    @property
    def has_event_loop(self) -> bool:
        """False for an instance restored from an image older than timers and host functions."""
        return self.layout.helpers[4] != 0

    def turn(self, kind: int, ident: int, text: bytes | int | None) -> int:
        """One step of the event loop in the guest (settle a host call, fire a timer, expose a
        host function, forget everything pending): the helper's result or the exception marker.
        `text` is a string for the guest, a boolean or 32-bit integer given as it is, or None
        for undefined (a timer's turn, a call that answered nothing)."""
        helper = self.layout.helpers[4]
        if helper == 0:
            raise GuestCorrupted("this sandbox's image predates timers and host functions")
        if not isinstance(text, bytes):
            return self.call_value(helper, [kind & 0x7FFFFFFF, ident & 0x7FFFFFFF, _plain_value(text)])
        with self.scope() as scope:
            text_v = scope.own(self.new_string(text))
            if is_exception(text_v):
                return text_v
            return self.call_value(helper, [kind & 0x7FFFFFFF, ident & 0x7FFFFFFF, text_v])

    def _call_with_strings(self, func: int, *texts: str) -> int:
        with self.scope() as scope:
            argv = [scope.own(self.new_string(t.encode())) for t in texts]
            return self.call_value(func, argv)

    def run_gc(self) -> None:
        a = self.args
        a[0].i32 = self.layout.rt
        self._f["JS_RunGC"]()

    def exception_text(self) -> str:
        """The pending exception, described as text (for set-up failures)."""
        with self.scope() as scope:
            desc = self.describe_error(scope.own(self.get_exception()))
            if is_exception(desc):
                return "(undescribable)"
            return self.take_string(desc).decode("utf-8", "replace")

    # ----- rejections ---------------------------------------------------------------------

    def take_rejections(self) -> tuple[list[tuple[int, int]], int]:
        """Unhandled rejections held (the caller frees both values), and how many more were
        only counted."""
        return self.rejections.take()

    def forget_rejection(self, promise: int, reason: int) -> None:
        self.rejections.forget(promise, reason, self.free_value)

    # ----- host callbacks (they run inside the guest: calls back in use the nested args) ---

    def _on_interrupt(self, args: Any) -> None:
        self.interrupt_calls += 1
        hooks = self._hooks
        stop = hooks.interrupt(self.stack_pointer())
        if not stop and self.exception_waiting():
            stop = hooks.dropped_job(self.memory_size())
        args[0].i32 = 1 if stop else 0

    def _on_console(self, args: Any) -> None:
        ctx = args[0].i32
        argc = args[2].i32
        argv = args[3].i32 & 0xFFFFFFFF
        if argc < 2:
            args[0].i64 = UNDEFINED
            return
        raw = ctypes.string_at(self._base_addr + argv, 16)
        level_v = int.from_bytes(raw[:8], "little", signed=True)
        text_v = int.from_bytes(raw[8:], "little", signed=True)
        if level_v >> 32 != TAG_INT or not is_string(text_v):
            args[0].i64 = UNDEFINED
            return
        level = level_v & 0xFFFFFFFF
        ptr, size = self._to_c_string(ctx, text_v)
        if ptr == 0:  # out of memory while converting: the pending exception propagates
            args[0].i64 = EXCEPTION
            return
        allowed = self._hooks.console(level, size)
        text = ctypes.string_at(self._base_addr + ptr, size) if allowed else b""
        self._free_c_string(ctx, ptr)
        if not allowed:
            args[0].i64 = self._throw_uncatchable(ctx)
            return
        self._hooks.console_text(level, text.decode("utf-8", "replace"))
        args[0].i64 = UNDEFINED

    def _on_bridge(self, args: Any) -> None:
        # The hottest callback (every host call and timer): arguments are read from memory,
        # without a call into the guest when they are integers or flat strings.
        argc = args[2].i32
        argv = args[3].i32 & 0xFFFFFFFF
        count = min(max(argc, 0), 4)
        view = self._view_to(argv + 8 * count)
        raw = (_four_values(view, argv) if count == 4 else
               tuple(_i64(view, argv + 8 * i)[0] if i < count else UNDEFINED for i in range(4)))
        op, slot, text, ident = raw
        reply: HostReply | Exception
        if (op == _CALL and slot >> 32 == TAG_INT and ident >> 32 == TAG_INT
                and text >> 32 in _STRING_TAGS):
            # A host function's call, as the bootstrap makes it: straight to the call.
            args_json = self._arg_string(text)
            reply = _OOM if args_json is None else self._hooks.call(_int32(slot), args_json, _int32(ident))
        else:  # a timer's request (inline too: one a turn), or one the bridge refuses
            reply = _OOM  # unless every string argument converts
            values: list[int | str | None] = []
            for v in raw:
                tag = v >> 32
                if tag == TAG_INT:
                    values.append(_int32(v))
                elif tag in _STRING_TAGS:
                    string = self._arg_string(v)
                    if string is None:
                        break
                    values.append(string)
                else:
                    values.append(None)
            else:
                first = values[0]
                reply = self._hooks.bridge(first if isinstance(first, int) else -1,
                                           values[1], values[2], values[3])
        if reply is None or isinstance(reply, int):
            args[0].i64 = _plain_value(reply)
        elif reply is NULL_REPLY:
            args[0].i64 = NULL
        elif isinstance(reply, bytes):
            args[0].i64 = self._nested_new_string(reply)
        elif reply is _OOM:  # out of memory while converting a string: the exception propagates
            args[0].i64 = EXCEPTION
        else:
            args[0].i64 = self._throw_uncatchable(self.layout.ctx)

    def _on_normalize(self, args: Any) -> None:
        ctx = args[0].i32
        referrer = self._c_string(args[1].i32 & 0xFFFFFFFF)
        specifier = self._c_string(args[2].i32 & 0xFFFFFFFF)
        ok, text = self._hooks.resolve_module(specifier, referrer)
        if not ok:
            args[0].i32 = self._throw_reference_error(ctx, text)
            return
        data = text.encode("utf-8", "surrogatepass").replace(b"\0", b"")
        na, nf = self._nested_args, self._nf
        na[0].i32, na[1].i32 = ctx, len(data) + 1
        nf["js_malloc"]()  # QuickJS frees the name with js_free
        ptr = na[0].i32 & 0xFFFFFFFF
        if ptr:
            ctypes.memmove(self._base_addr + ptr, data + b"\0", len(data) + 1)
        args[0].i32 = ptr  # 0: out of memory, which js_malloc has thrown

    def _on_load(self, args: Any) -> None:
        ctx = args[0].i32
        name_ptr = args[1].i32 & 0xFFFFFFFF
        ok, text = self._hooks.load_module(self._c_string(name_ptr))
        if not ok:
            args[0].i32 = self._throw_reference_error(ctx, text)
            return
        source = text.encode("utf-8", "surrogatepass")
        buf = self._nested_c_copy(ctx, source)
        if buf == 0:
            args[0].i32 = 0
            return
        na, nf = self._nested_args, self._nf
        na[0].i32, na[1].i32, na[2].i32 = ctx, buf, len(source)
        na[3].i32, na[4].i32 = name_ptr, EVAL_MODULE | EVAL_COMPILE_ONLY
        nf["JS_Eval"]()
        module = na[0].i64
        na[0].i32 = buf
        nf["free"]()
        if is_exception(module):  # a syntax error: it stays pending, QuickJS reports it
            args[0].i32 = 0
            return
        # As QuickJS's own loader does: the module stays registered with the context.
        na[0].i32, na[1].i64 = ctx, module
        nf["JS_FreeValue"]()
        args[0].i32 = module & 0xFFFFFFFF

    def _nested_c_copy(self, ctx: int, data: bytes) -> int:
        """`data` and a NUL in a new malloc'd buffer (the caller frees it); 0, with QuickJS's
        out-of-memory error thrown, when the guest has no room."""
        na, nf = self._nested_args, self._nf
        na[0].i32 = len(data) + 1
        nf["malloc"]()
        buf = na[0].i32 & 0xFFFFFFFF
        if buf == 0:
            na[0].i32 = ctx
            nf["JS_ThrowOutOfMemory"]()
            return 0
        ctypes.memmove(self._base_addr + buf, data + b"\0", len(data) + 1)
        return buf

    def _c_string(self, ptr: int) -> str:
        if ptr == 0:
            return ""
        data = ctypes.string_at(self._base_addr + ptr)
        return data.decode("utf-8", "surrogatepass")

    def _throw_reference_error(self, ctx: int, message: str) -> int:
        """Throw a ReferenceError with `message` (no format directives); returns 0 (NULL)."""
        data = message.encode("utf-8", "replace").replace(b"%", b"%%").replace(b"\0", b"")
        buf = self._nested_c_copy(ctx, data)
        if buf == 0:
            return 0
        na, nf = self._nested_args, self._nf
        na[0].i32, na[1].i32, na[2].i32 = ctx, buf, 0
        nf["JS_ThrowReferenceError"]()
        na[0].i32 = buf
        nf["free"]()
        return 0

    def _arg_string(self, value: int) -> str | None:
        """A string argument of a callback: read from memory when it is flat (no call into the
        guest, see sandbox.string_layout), else converted by QuickJS; None when the guest ran
        out of memory converting it (its exception is pending)."""
        if value >> 32 == TAG_STRING:
            text = STRINGS.read(self._view, value & 0xFFFFFFFF)
            if text is None and self._view_grew():
                text = STRINGS.read(self._view, value & 0xFFFFFFFF)
            if text is not None:
                return text
        ctx = self.layout.ctx
        ptr, size = self._to_c_string(ctx, value)
        if ptr == 0:
            return None
        data = ctypes.string_at(self._base_addr + ptr, size)
        self._free_c_string(ctx, ptr)
        if value >> 32 == TAG_STRING and STRINGS.data_offset is None:
            STRINGS.learn(self._base_addr, value & 0xFFFFFFFF, data)
        return data.decode("utf-8", "surrogatepass")

    def _view_grew(self) -> bool:
        """Re-make `_view` if the memory grew since it was made; True if it did."""
        size = self.memory_size()
        if size == len(self._view):
            return False
        self._view = _memory_view(self._base_addr, size)
        return True

    def _view_to(self, end: int) -> memoryview:
        """`_view`, re-made first if `end` lies beyond it (the memory grew since)."""
        if end > len(self._view):
            self._view_grew()
        return self._view

    def _to_c_string(self, ctx: int, value: int) -> tuple[int, int]:
        """JS_ToCStringLen2 from inside a callback: (pointer, length in bytes); pointer 0 when
        the guest ran out of memory (its exception is pending). Free with _free_c_string."""
        na, scratch = self._nested_args, self.layout.scratch
        na[0].i32, na[1].i32, na[2].i64, na[3].i32 = ctx, scratch, value, 0
        self._nf["JS_ToCStringLen2"]()
        ptr = na[0].i32 & 0xFFFFFFFF
        if ptr == 0:
            return 0, 0
        return ptr, int.from_bytes(ctypes.string_at(self._base_addr + scratch, 4), "little")

    def _free_c_string(self, ctx: int, ptr: int) -> None:
        na = self._nested_args
        na[0].i32, na[1].i32 = ctx, ptr
        self._nf["JS_FreeCString"]()

    def _nested_new_string(self, text: bytes) -> int:
        ctx = self.layout.ctx
        # Inside a callback the short-text buffer is free too (see new_string), and its argument
        # area, which the host's JS_Call in progress may be using, is beyond SHORT_TEXT.
        short = len(text) < SHORT_TEXT
        if short:
            buf = self.layout.source
            ctypes.memmove(self._base_addr + buf, text, len(text))
        else:
            buf = self._nested_c_copy(ctx, text)
            if buf == 0:
                return EXCEPTION
        na, nf = self._nested_args, self._nf
        na[0].i32, na[1].i32, na[2].i32 = ctx, buf, len(text)
        nf["JS_NewStringLen"]()
        value = na[0].i64
        if not short:
            na[0].i32 = buf
            nf["free"]()
        return value

    def _on_rejection(self, args: Any) -> None:
        self.rejections.on_rejection(args[1].i64, args[2].i64, args[3].i32 != 0)

    def _nested_dup(self, value: int) -> None:
        na = self._nested_args
        na[0].i32, na[1].i64 = self.layout.ctx, value
        self._nf["JS_DupValue"]()

    def _nested_free(self, value: int) -> None:
        if value >> 32 < 0:
            na = self._nested_args
            na[0].i32, na[1].i64 = self.layout.ctx, value
            self._nf["JS_FreeValue"]()

    def _throw_uncatchable(self, ctx: int) -> int:
        nf = self._nf
        na = self._nested_args
        # "%s"-free message, so the variadic argument pointer may be 0.
        msg = self.layout.scratch + 8
        self.write(msg, b"limit\0\0\0")
        na[0].i32, na[1].i32, na[2].i32 = ctx, msg, 0
        nf["JS_ThrowInternalError"]()
        na[0].i32 = ctx
        nf["JS_GetException"]()
        err = na[0].i64
        na[0].i32, na[1].i64 = ctx, err
        nf["JS_SetUncatchableError"]()
        na[0].i32, na[1].i64 = ctx, err
        nf["JS_Throw"]()
        return na[0].i64

    def close(self) -> None:
        self.store.close()
