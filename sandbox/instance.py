"""One guest instance: a wasmtime store holding QuickJS, driven through its C API.

This is the only module that knows QuickJS's calling conventions, the NaN-boxed JSValue
layout and the guest's memory layout. It offers the sandbox a small set of operations
(evaluate a script or module, call a helper, drain jobs, read a described result) and the
memory-level mechanics of checkpoints: capture, restore into a fresh instance, guard check.

Host callbacks (the interrupt handler and the console) are forwarded to a `HostHooks` object;
the instance itself holds no policy.
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import wasmtime

from sandbox.engine import guest_engine
from sandbox.errors import GuestCorrupted, ImageError
from sandbox.guest import guest_rodata_end
from sandbox.log import get_logger
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

log = get_logger("sandbox.instance")

PAGE = 65536

# JSValue tags (high 32 bits of the NaN-boxed i64).
TAG_INT = 0
TAG_BOOL = 1
TAG_NULL = 2
TAG_UNDEFINED = 3
TAG_EXCEPTION = 6
TAG_MODULE = -3
TAG_OBJECT = -1
TAG_STRING = -7
TAG_STRING_ROPE = -6  # QuickJS-NG builds long concatenations lazily; still a string
UNDEFINED = TAG_UNDEFINED << 32
EXCEPTION = TAG_EXCEPTION << 32

EVAL_GLOBAL = 0
EVAL_MODULE = 1
EVAL_STRICT = 1 << 3
EVAL_COMPILE_ONLY = 1 << 5

PROMISE_PENDING, PROMISE_FULFILLED, PROMISE_REJECTED = 0, 1, 2

# The C shadow stack is moved into a block of this size (see docs/engine.md, "The stack").
# The lowest STACK_GUARD bytes of the block, and the old 64 KiB stack region below it, are
# filled with GUARD_BYTE and checked after every evaluation.
STACK_BLOCK = 1024 * 1024
STACK_GUARD = 64 * 1024
OLD_STACK = 64 * 1024
# The interrupt handler stops a script gracefully when the stack pointer enters this zone.
STACK_RED_ZONE = 128 * 1024
GUARD_BYTE = 0xA5
DEFAULT_FILENAME = b"<input>"
# Sources shorter than this are copied into a buffer kept for the purpose (no malloc/free).
SOURCE_BUFFER = 4096

_EXPORTS = (
    "malloc", "free", "JS_NewRuntime", "JS_NewContext", "JS_Eval", "JS_Call",
    "JS_GetException", "JS_ToCStringLen2", "JS_FreeCString", "JS_FreeValue", "JS_DupValue",
    "JS_SetInterruptHandler", "JS_NewCFunction2", "JS_ExecutePendingJob", "JS_IsJobPending",
    "JS_PromiseState", "JS_PromiseResult", "JS_NewStringLen", "JS_GetPropertyUint32",
    "JS_EvalFunction", "JS_GetModuleNamespace", "JS_ThrowInternalError",
    "JS_SetUncatchableError", "JS_Throw", "JS_ResetUncatchableError", "JS_RunGC",
    "JS_SetHostPromiseRejectionTracker", "_initialize",
)

_INTERRUPT_TYPE = wasmtime.FuncType([wasmtime.ValType.i32(), wasmtime.ValType.i32()],
                                    [wasmtime.ValType.i32()])
_CFUNCTION_TYPE = wasmtime.FuncType(
    [wasmtime.ValType.i32(), wasmtime.ValType.i64(), wasmtime.ValType.i32(), wasmtime.ValType.i32()],
    [wasmtime.ValType.i64()],
)
# JSHostPromiseRejectionTracker(ctx, promise, reason, is_handled, opaque)
_REJECTION_TYPE = wasmtime.FuncType(
    [wasmtime.ValType.i32(), wasmtime.ValType.i64(), wasmtime.ValType.i64(), wasmtime.ValType.i32(),
     wasmtime.ValType.i32()],
    [],
)
# Rejected promises without a handler held for the end of the evaluation; past this many at
# once they are only counted (each held one keeps its promise and reason alive in the guest).
MAX_HELD_REJECTIONS = 20
# What _initialise leaves in a fresh instance changed (part of the pristine image cache key):
# 2 - the promise rejection tracker is installed.
SETUP_REVISION = 2


# The block guard holds a pattern (a frame's writes are rarely all 0xA5). The old stack
# region below it stays zero: a restored instance's fresh memory already is, so restoring
# costs no writes there; any overflow reaching it has crossed the patterned guard first.
_GUARD_PATTERN = bytes([GUARD_BYTE]) * STACK_GUARD
_ZEROS = bytes(OLD_STACK)

_GUARD_WORD = _GUARD_PATTERN[:8]
_ZERO_WORD = bytes(8)

_memcmp = ctypes.CDLL(None).memcmp
_memcmp.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
_memcmp.restype = ctypes.c_int


def tag_of(value: int) -> int:
    return value >> 32


def _address(data: bytes | memoryview) -> int:
    """The address of a buffer's first byte, without copying it."""
    if isinstance(data, bytes):
        return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
    return ctypes.addressof(ctypes.c_char.from_buffer(data))


def is_exception(value: int) -> bool:
    """Whether a host call answered JS_EXCEPTION (the thrown value waits in the context)."""
    return value >> 32 == TAG_EXCEPTION  # tag_of, inlined: several calls per evaluation


def immediate_payload(value: int) -> dict[str, Any] | None:
    """The value payload of a JSValue that carries no pointer, without entering the guest."""
    tag = value >> 32
    if tag == TAG_INT:
        n = value & 0xFFFFFFFF
        if n >= 1 << 31:
            n -= 1 << 32
        return {"type": "number", "preview": str(n), "json": n}
    if tag == TAG_BOOL:
        b = (value & 0xFFFFFFFF) != 0
        return {"type": "boolean", "preview": "true" if b else "false", "json": b}
    if tag == TAG_NULL:
        return {"type": "null", "preview": "null", "json": None}
    if tag == TAG_UNDEFINED:
        return {"type": "undefined", "preview": "undefined"}
    return None


class HostHooks(Protocol):
    """What the instance asks its owner while the guest runs."""

    def interrupt(self, stack_pointer: int) -> bool:
        """True stops the script (QuickJS throws an uncatchable 'interrupted')."""

    def deadline(self) -> bool:
        """At each epoch tick while the guest runs: True traps it (the hard backstop)."""

    def console(self, level: int, text_bytes: int) -> bool:
        """Account for a console line of `text_bytes` bytes. False: a cap was crossed."""

    def console_text(self, level: int, text: str) -> None:
        """Record the console line (called only when console() allowed it)."""


@dataclass(frozen=True)
class Layout:
    """Addresses inside the guest that the host relies on; identical in every image."""

    rt: int
    ctx: int
    scratch: int  # 16 bytes for out-parameters
    filename: int  # "<input>\0"
    source: int  # SOURCE_BUFFER bytes for short sources
    stack_lo: int  # lowest byte of the stack block (its guard region starts here)
    stack_hi: int  # initial stack pointer (top of the block)
    old_stack_lo: int
    helpers: tuple[int, int, int, int]  # describe, describeError, callGlobal, defineFrozenGlobal
    table_base: int  # index of the first host function in table 0
    rodata_end: int  # memory below is constant
    interrupt_counter: int  # address of QuickJS's interrupt counter; 0 if it was not found

    def kept_ranges(self, size: int) -> tuple[tuple[int, int], ...]:
        """[start, end) ranges a checkpoint copies, for a memory of `size` bytes."""
        return ((self.rodata_end, self.old_stack_lo),
                (self.old_stack_lo + OLD_STACK, self.stack_lo),
                (self.stack_hi, size))

    def kept_bytes(self, size: int) -> int:
        return sum(end - start for start, end in self.kept_ranges(size))

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"helpers": list(self.helpers)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Layout:
        fields: dict[str, Any] = {k: int(v) for k, v in data.items() if k != "helpers"}
        fields["helpers"] = tuple(int(h) for h in data["helpers"])
        return cls(**fields)


@dataclass(frozen=True)
class MemoryImage:
    """Linear memory at a quiescent point: the bytes of `layout.kept_ranges(size)`.

    Not kept: constants below `rodata_end` (a fresh instance gets them from the module), the
    guard regions (refilled with their pattern) and the stack block (between evaluations no
    guest frame is live, so it holds nothing worth keeping).
    """

    data: bytes | memoryview  # the kept ranges, concatenated
    size: int
    stack_pointer: int
    layout: Layout


@cache
def _arg_slots() -> dict[str, int]:
    """Argument-array sizes of the exports the host calls, checked once per process."""
    types = {e.name: e.type for e in guest_engine().module.exports}
    slots = {}
    for name in _EXPORTS:
        ty = types.get(name)
        if not isinstance(ty, wasmtime.FuncType):
            raise GuestCorrupted(f"the guest does not export the function {name}")
        slots[name] = arg_slots(ty)
    return slots


def bootstrap_source() -> bytes:
    # A plain file beside this module (package data), read without importlib.resources,
    # whose import alone costs ~12 ms.
    return Path(__file__).with_name("bootstrap.js").read_bytes()


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

        class NestedExports(dict):
            def __missing__(self, name: str) -> RawFunc:
                func = self[name] = outer._f[name].with_args(nested_args)
                return func

        self._f: dict[str, RawFunc] = Exports()
        self._nf: dict[str, RawFunc] = NestedExports()
        self.memory: wasmtime.Memory = export("memory")
        self._memory_ref = memory_ref(self.memory)
        self._base_addr = 0
        self._rest_sp = 0  # the stack pointer between evaluations (see _set_stack_pointer)
        self._plan: tuple[int, tuple[tuple[int, int, int], ...]] = (-1, ())
        self._interrupt_calls = 0
        self._table: wasmtime.Table = export(TABLE_EXPORT)
        self._sp_global: wasmtime.Global = export(STACK_POINTER_EXPORT)
        self._sp_reader = GlobalI32(self.store, self._sp_global)
        self._guard_expected = _GUARD_PATTERN
        self._old_guard_expected = _ZEROS

        # Rejected promises nobody handled yet: promise -> reason, both held (duplicated).
        self._rejections: dict[int, int] = {}
        self.rejections_not_held = 0

        interrupt = host_func(self.store, _INTERRUPT_TYPE, self._on_interrupt)
        console = host_func(self.store, _CFUNCTION_TYPE, self._on_console)
        rejection = host_func(self.store, _REJECTION_TYPE, self._on_rejection)
        # Always in this order: an image's runtime refers to these table slots.
        base = install_funcs(self.store, self._table, [interrupt, console, rejection])

        if image is None:
            self.layout = self._initialise(base)
        else:
            self._restore(image, base)
            self.layout = image.layout
        self._refresh_base()
        lay = self.layout
        self._guards = (self._base_addr + lay.stack_lo, self._base_addr + lay.old_stack_lo)
        self._counter_addr = self._base_addr + lay.interrupt_counter if lay.interrupt_counter else 0

    # ----- memory -----------------------------------------------------------------------

    def _refresh_base(self) -> None:
        # The engine is configured with memory_may_move=False: the base is fixed once known.
        if not self._base_addr:
            self._base_addr = ctypes.addressof(self.memory.data_ptr(self.store).contents)

    def memory_size(self) -> int:
        return memory_data_size(self._ctx_ptr, self._memory_ref)

    def arm_deadline(self, ticks: int) -> None:
        """Let the store reach its epoch deadline `ticks` ticks from now."""
        set_epoch_deadline(self._ctx_ptr, ticks)

    def base_address(self) -> int:
        """Where linear memory starts in this process (fixed for the instance's life)."""
        self._refresh_base()
        return self._base_addr

    def write(self, addr: int, data: bytes) -> None:
        self._refresh_base()
        ctypes.memmove(self._base_addr + addr, data, len(data))

    def read(self, addr: int, size: int) -> bytes:
        self._refresh_base()
        return ctypes.string_at(self._base_addr + addr, size)

    def read_u32(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), "little")

    # ----- raw calls ----------------------------------------------------------------------

    def _call_i32(self, name: str, *params: int) -> int:
        a = self.args
        for i, p in enumerate(params):
            a[i].i32 = p
        self._f[name]()
        return a[0].i32

    def malloc(self, size: int) -> int:
        return self._call_i32("malloc", size) & 0xFFFFFFFF

    def free(self, ptr: int) -> None:
        self._call_i32("free", ptr)

    def scope(self) -> ValueScope:
        """A scope that frees the values handed to it (`with inst.scope() as scope:`)."""
        return ValueScope(self.free_value)

    def free_value(self, value: int) -> None:
        if tag_of(value) < 0:  # only heap values are reference counted
            a = self.args
            a[0].i32 = self.layout.ctx
            a[1].i64 = value
            self._f["JS_FreeValue"]()

    def stack_pointer(self) -> int:
        return self._sp_reader.get()

    def _set_stack_pointer(self, value: int) -> None:
        # Only the host moves the stack pointer between evaluations; every guest call returns
        # it where it found it (a trap does not, and its instance never runs again). So this
        # value is the stack pointer at every quiescent point, without asking the engine.
        set_global_i32(self.store, self._sp_global, value)
        self._rest_sp = value

    # ----- set-up -------------------------------------------------------------------------

    def _initialise(self, table_base: int) -> Layout:
        self._f["_initialize"]()
        old_sp = self.stack_pointer()
        block = self.malloc(STACK_BLOCK + 16)
        if block == 0 or block < old_sp or old_sp - OLD_STACK < guest_rodata_end():
            raise GuestCorrupted("could not place the stack block above the old stack")
        stack_lo = (block + 15) & ~15
        stack_hi = stack_lo + STACK_BLOCK
        self._set_stack_pointer(stack_hi)
        old_stack_lo = old_sp - OLD_STACK
        rt = self._call_i32("JS_NewRuntime")
        ctx = self._call_i32("JS_NewContext", rt)
        scratch = self.malloc(16)
        filename = self.malloc(16)
        source = self.malloc(SOURCE_BUFFER)
        if not (rt and ctx and scratch and filename and source):
            raise GuestCorrupted("QuickJS failed to initialise")
        self.write(filename, DEFAULT_FILENAME + b"\0")
        self._call_i32("JS_SetInterruptHandler", rt, table_base, 0)
        self._call_i32("JS_SetHostPromiseRejectionTracker", rt, table_base + 2, 0)
        self.layout = Layout(rt, ctx, scratch, filename, source, stack_lo, stack_hi, old_stack_lo,
                             (0, 0, 0, 0), table_base, guest_rodata_end(), 0)
        self._fill_guards(old_stack=True)  # clears what _initialize left on the old stack
        helpers = self._run_bootstrap(table_base + 1)
        counter = self._find_interrupt_counter()
        self.layout = Layout(rt, ctx, scratch, filename, source, stack_lo, stack_hi, old_stack_lo,
                             helpers, table_base, guest_rodata_end(), counter)
        return self.layout

    def _find_interrupt_counter(self) -> int:
        """Locate QuickJS's interrupt counter in the JSContext by watching it count down.

        The field's offset is not part of any API, so it is found, then verified: set to 1, the
        next loop must call the interrupt handler at once. Not found: 0 (no pokes; the limits
        still hold, only less promptly during long native calls).
        """
        ctx = self.layout.ctx
        words = 512

        def snapshot() -> tuple[int, ...]:
            return struct.unpack(f"<{words}i", self.read(ctx, words * 4))

        def spin(n: int) -> None:
            self.free_value(self.eval_raw(f"for (let i = 0; i < {n}; i++) {{}}".encode(), EVAL_GLOBAL))

        first = snapshot()
        spin(100)
        second = snapshot()
        spin(1000)
        third = snapshot()
        candidates = [i for i, (a, b, c) in enumerate(zip(first, second, third, strict=True))
                      if 0 < c < b < a <= 10_000 and (b - c) > (a - b)]
        if len(candidates) != 1:
            log.warning("interrupt_counter_not_found", candidates=len(candidates))
            return 0
        address = ctx + candidates[0] * 4
        self.write(address, (1).to_bytes(4, "little"))
        before = self._interrupt_calls
        spin(10)
        if self._interrupt_calls == before:
            log.warning("interrupt_counter_not_verified", offset=candidates[0] * 4)
            return 0
        return address


    def _run_bootstrap(self, console_index: int) -> tuple[int, int, int, int]:
        ctx = self.layout.ctx
        name = self.malloc(16)
        self.write(name, b"console\0")
        a = self.args
        a[0].i32, a[1].i32, a[2].i32, a[3].i32, a[4].i32, a[5].i32 = ctx, console_index, name, 2, 0, 0
        self._f["JS_NewCFunction2"]()
        host_console = a[0].i64
        src = bootstrap_source()
        fn = self.eval_raw(src, EVAL_GLOBAL | EVAL_STRICT, b"<vm-system>")
        if tag_of(fn) == TAG_EXCEPTION:
            raise GuestCorrupted("the bootstrap script failed: " + self._exception_text())
        helpers_array = self.call_value(fn, [host_console])
        self.free_value(fn)
        self.free_value(host_console)
        if tag_of(helpers_array) == TAG_EXCEPTION:
            raise GuestCorrupted("the bootstrap script failed: " + self._exception_text())
        helpers = []
        for i in range(4):
            a[0].i32, a[1].i64, a[2].i32 = ctx, helpers_array, i
            self._f["JS_GetPropertyUint32"]()
            helpers.append(a[0].i64)
        self.free_value(helpers_array)
        self.free(name)
        return tuple(helpers)

    def _fill_guards(self, old_stack: bool = True) -> None:
        self.write(self.layout.stack_lo, self._guard_expected)
        if old_stack:
            self.write(self.layout.old_stack_lo, self._old_guard_expected)

    def guard_intact(self) -> bool:
        """False if the shadow stack ever ran into its guard regions: the instance is corrupt."""
        guard, old = self._guards
        # A region equal to itself shifted by 8 bytes holds one repeated 8-byte word; its
        # first word then decides. One pass over memory instead of two (memory and pattern).
        return (_memcmp(guard, guard + 8, STACK_GUARD - 8) == 0
                and ctypes.string_at(guard, 8) == _GUARD_WORD
                and _memcmp(old, old + 8, OLD_STACK - 8) == 0
                and ctypes.string_at(old, 8) == _ZERO_WORD)

    def stack_pointer_escaped(self) -> bool:
        """True if the stack pointer is outside the usable part of the stack block."""
        sp = self.stack_pointer()
        return not (self.layout.stack_lo + STACK_GUARD <= sp <= self.layout.stack_hi)

    def stack_in_red_zone(self, sp: int) -> bool:
        return sp < self.layout.stack_lo + STACK_GUARD + STACK_RED_ZONE

    # ----- checkpoints --------------------------------------------------------------------

    def capture(self, into: bytearray | None = None, size: int | None = None) -> MemoryImage:
        """A checkpoint; only valid between evaluations (no guest frame live).

        With `into` (at least `capture_size()` bytes), the bytes are copied into that buffer
        and the image views it: copying into warm pages costs a third of a fresh allocation.
        The caller must not reuse the buffer while the image is in use. `size`, when the
        caller already knows the memory size (it cannot change between evaluations).
        """
        if size is None:
            size = self.memory_size()
        copies = self.copy_plan(size)
        total = copies[-1][0] + copies[-1][2]
        target = into if into is not None else bytearray(total)
        dst = ctypes.addressof(ctypes.c_char.from_buffer(target))
        memmove = ctypes.memmove
        for offset, src, length in copies:
            memmove(dst + offset, src, length)
        data: bytes | memoryview = memoryview(target)[:total] if into is not None else bytes(target)
        return MemoryImage(data, size, self._rest_sp, self.layout)

    def rest_stack_pointer(self) -> int:
        """The stack pointer between evaluations (what an image records)."""
        return self._rest_sp

    def copy_plan(self, size: int) -> tuple[tuple[int, int, int], ...]:
        """(offset in the image, host address, length) of each kept range of a memory of
        `size` bytes (kept for the last size asked: it changes only when memory grows)."""
        if self._plan[0] != size:
            self._refresh_base()
            plan, offset = [], 0
            for start, end in self.layout.kept_ranges(size):
                plan.append((offset, self._base_addr + start, end - start))
                offset += end - start
            self._plan = (size, tuple(plan))
        return self._plan[1]

    def capture_size(self, size: int | None = None) -> int:
        return self.layout.kept_bytes(self.memory_size() if size is None else size)

    def _restore(self, image: MemoryImage, table_base: int) -> None:
        lay = image.layout
        if table_base != lay.table_base:
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
        self._check_fits(image, self.memory_size())
        self._refresh_base()
        base = self._base_addr
        src = _address(image.data)
        offset = 0
        for start, end in lay.kept_ranges(image.size):
            ctypes.memmove(base + start, src + offset, end - start)
            offset += end - start
        self.layout = lay
        self._set_stack_pointer(image.stack_pointer)
        self._fill_guards(old_stack=False)  # fresh memory: already zero

    @staticmethod
    def _check_fits(image: MemoryImage, memory: int) -> None:
        """Refuse an image whose copies or guards would reach outside `memory` bytes: the
        host copies with memmove, which no wasm bounds check protects. decode_image already
        validated signed images; this holds for every image, whatever made it."""
        lay = image.layout
        ranges = lay.kept_ranges(image.size)
        guards = ((lay.stack_lo, lay.stack_lo + STACK_GUARD),
                  (lay.old_stack_lo, lay.old_stack_lo + OLD_STACK))
        if (image.size > memory
                or any(not 0 <= start <= end <= image.size for start, end in ranges + guards)
                or sum(end - start for start, end in ranges) != len(image.data)):
            raise ImageError("the image does not fit the memory it is restored into")

    # ----- evaluation ---------------------------------------------------------------------

    def eval_raw(self, source: bytes, flags: int, filename: bytes | None = None) -> int:
        """JS_Eval. Returns the JSValue (possibly the exception marker)."""
        lay = self.layout
        small = len(source) < SOURCE_BUFFER
        buf = lay.source if small else self.malloc(len(source) + 1)
        if buf == 0:
            return self._throw_oom()
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

    def _throw_oom(self) -> int:
        # The guest cannot even hold the source: behave as QuickJS does when it runs out.
        return EXCEPTION

    def call_value(self, func: int, argv: list[int], this: int = UNDEFINED) -> int:
        lay = self.layout
        a = self.args
        argv_ptr = 0
        if argv:
            argv_ptr = self.malloc(8 * len(argv))
            if argv_ptr == 0:
                return EXCEPTION
            self.write(argv_ptr, b"".join((v & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little") for v in argv))
        try:
            a[0].i32, a[1].i64, a[2].i64, a[3].i32, a[4].i32 = lay.ctx, func, this, len(argv), argv_ptr
            self._f["JS_Call"]()
            return a[0].i64
        finally:
            if argv_ptr:
                self.free(argv_ptr)

    def new_string(self, text: bytes) -> int:
        buf = self.malloc(len(text) + 1)
        if buf == 0:
            return EXCEPTION
        self.write(buf, text + b"\0")
        a = self.args
        a[0].i32, a[1].i32, a[2].i32 = self.layout.ctx, buf, len(text)
        self._f["JS_NewStringLen"]()
        value = a[0].i64
        self.free(buf)
        return value

    def get_exception(self) -> int:
        a = self.args
        a[0].i32 = self.layout.ctx
        self._f["JS_GetException"]()
        return a[0].i64

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
        if tag_of(value) != TAG_OBJECT:
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
        name_v = self.new_string(name.encode())
        args_v = self.new_string(args_json.encode())
        try:
            return self.call_value(self.layout.helpers[2], [name_v, args_v])
        finally:
            self.free_value(name_v)
            self.free_value(args_v)

    def define_frozen_global(self, name: str, value_json: str) -> int:
        name_v = self.new_string(name.encode())
        value_v = self.new_string(value_json.encode())
        try:
            return self.call_value(self.layout.helpers[3], [name_v, value_v])
        finally:
            self.free_value(name_v)
            self.free_value(value_v)

    def run_gc(self) -> None:
        a = self.args
        a[0].i32 = self.layout.rt
        self._f["JS_RunGC"]()

    def _exception_text(self) -> str:
        exc = self.get_exception()
        desc = self.describe_error(exc)
        self.free_value(exc)
        if tag_of(desc) == TAG_EXCEPTION:
            return "(undescribable)"
        return self.take_string(desc).decode("utf-8", "replace")

    # ----- host callbacks -----------------------------------------------------------------

    def _on_interrupt(self, args: Any) -> None:
        self._interrupt_calls += 1
        args[0].i32 = 1 if self._hooks.interrupt(self.stack_pointer()) else 0

    def counter_host_address(self) -> int:
        """Absolute host address of the interrupt counter (0: unknown), for the ticker's pokes."""
        return self._counter_addr

    def _on_console(self, args: Any) -> None:
        ctx = args[0].i32
        argc = args[2].i32
        argv = args[3].i32 & 0xFFFFFFFF
        nf = self._nf
        na = self._nested_args
        if argc < 2:
            args[0].i64 = UNDEFINED
            return
        self._refresh_base()
        raw = ctypes.string_at(self._base_addr + argv, 16)
        level_v = int.from_bytes(raw[:8], "little", signed=True)
        text_v = int.from_bytes(raw[8:], "little", signed=True)
        if tag_of(level_v) != TAG_INT or tag_of(text_v) not in (TAG_STRING, TAG_STRING_ROPE):
            args[0].i64 = UNDEFINED
            return
        level = level_v & 0xFFFFFFFF
        na[0].i32, na[1].i32, na[2].i64, na[3].i32 = ctx, self.layout.scratch, text_v, 0
        nf["JS_ToCStringLen2"]()
        ptr = na[0].i32 & 0xFFFFFFFF
        if ptr == 0:  # out of memory while converting: the pending exception propagates
            args[0].i64 = EXCEPTION
            return
        self._refresh_base()
        size = int.from_bytes(ctypes.string_at(self._base_addr + self.layout.scratch, 4), "little")
        allowed = self._hooks.console(level, size)
        text = ctypes.string_at(self._base_addr + ptr, size) if allowed else b""
        na[0].i32, na[1].i32 = ctx, ptr
        nf["JS_FreeCString"]()
        if not allowed:
            args[0].i64 = self._throw_uncatchable(ctx)
            return
        self._hooks.console_text(level, text.decode("utf-8", "replace"))
        args[0].i64 = UNDEFINED

    def _on_rejection(self, args: Any) -> None:
        """A promise was rejected without a handler (is_handled 0), or one got its first
        handler after such a rejection (1). Runs inside the guest: no script code may run
        here, only reference counting."""
        promise, reason, handled = args[1].i64, args[2].i64, args[3].i32
        held = self._rejections
        if handled:
            reason = held.pop(promise, None)
            if reason is not None:
                self._nested_free(promise)
                self._nested_free(reason)
            return
        if promise in held:
            return
        if len(held) >= MAX_HELD_REJECTIONS:
            self.rejections_not_held += 1
            return
        held[promise] = reason
        for value in (promise, reason):
            if tag_of(value) < 0:
                na = self._nested_args
                na[0].i32, na[1].i64 = self.layout.ctx, value
                self._nf["JS_DupValue"]()

    def _nested_free(self, value: int) -> None:
        if tag_of(value) < 0:
            na = self._nested_args
            na[0].i32, na[1].i64 = self.layout.ctx, value
            self._nf["JS_FreeValue"]()

    @property
    def has_rejections(self) -> bool:
        return bool(self._rejections) or self.rejections_not_held > 0

    def take_rejections(self) -> tuple[list[tuple[int, int]], int]:
        """The rejections still unhandled, held (the caller frees both values), and how many
        more were only counted; the instance forgets them all."""
        held, self._rejections = list(self._rejections.items()), {}
        counted, self.rejections_not_held = self.rejections_not_held, 0
        return held, counted

    def forget_rejection(self, promise: int, reason: int) -> None:
        """The evaluation's own result was rejected with `reason`: it is reported as the
        evaluation's error, so neither that promise nor one rejected with the same object
        (a module's inner evaluation promise) is reported as unhandled."""
        same = [p for p, r in self._rejections.items()
                if p == promise or (r == reason and tag_of(reason) < 0)]
        for p in same:
            self.free_value(p)
            self.free_value(self._rejections.pop(p))

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
