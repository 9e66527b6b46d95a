"""The hot path between Python and the guest, below wasmtime-py's convenience layer.

`wasmtime.Func.__call__` converts every argument through `Val` and checks the function type on
each call (~20 µs). An evaluation crosses the boundary about ten times, so the checked path
alone would cost more than the whole budget of a trivial evaluation. Here a guest export is
called through `wasmtime_func_call_unchecked` with a preallocated raw argument array (~1 µs),
and host functions are created with `wasmtime_func_new_unchecked`, whose callback receives the
raw argument array. Types are checked once, when the export is bound.

Like every ctypes call into a CDLL, the call releases the GIL, so guests in different threads
run in parallel.
"""

from __future__ import annotations

import ctypes
import itertools
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _bindings
from wasmtime import _ffi as ffi
from wasmtime._extern import wrap_extern
from wasmtime._func import Func

RawArgs = ctypes.Array  # of ffi.wasmtime_val_raw_t

_call_unchecked = _bindings._wasmtime_func_call_unchecked
_new_unchecked = _bindings._wasmtime_func_new_unchecked
# Called once or twice per evaluation: the raw entry points skip wasmtime-py's wrappers.
memory_data_size = _bindings._wasmtime_memory_data_size
set_epoch_deadline = _bindings._wasmtime_context_set_epoch_deadline
_byref = ctypes.byref


class GuestTrap(Exception):
    """The guest trapped: its instance is in an undefined state and must not run again."""

    def __init__(self, code: wasmtime.TrapCode | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _raise_from(error: Any, trap: Any) -> None:
    if trap:
        trap_obj = wasmtime.Trap._from_ptr(trap)
        raise GuestTrap(trap_obj.trap_code, trap_obj.message)
    err = wasmtime.WasmtimeError._from_ptr(error)
    raise GuestTrap(None, str(err))


class RawFunc:
    """One guest export, called without per-call type checks.

    `args` is the shared argument/result array of the instance: the caller fills it, calls,
    and reads slot 0 for the result. Not thread-safe; an instance is driven by one thread at
    a time.
    """

    __slots__ = ("_func", "_fref", "_ctx", "_args", "_nargs", "_trap", "_tref", "name")

    def __init__(self, store: wasmtime.Store, func: Any, args: RawArgs, nargs: int, name: str) -> None:
        # nargs = max(params, results), from the module's export types (checked once per
        # process by the caller): asking each Func for its type costs more than the call.
        if nargs > len(args):
            raise ValueError(f"{name}: argument array too small")
        self._func = func  # an ffi.wasmtime_func_t
        self._fref = _byref(self._func)
        self._ctx = store._context()
        self._args = args
        self._nargs = nargs
        self._trap = ctypes.POINTER(ffi.wasm_trap_t)()
        self._tref = _byref(self._trap)
        self.name = name

    def with_args(self, args: RawArgs) -> RawFunc:
        """The same export, bound to another argument array (for calls nested in callbacks)."""
        twin = object.__new__(RawFunc)
        twin._func, twin._fref, twin._ctx = self._func, self._fref, self._ctx
        twin._args, twin._nargs, twin.name = args, self._nargs, self.name
        twin._trap = ctypes.POINTER(ffi.wasm_trap_t)()
        twin._tref = _byref(twin._trap)
        return twin

    def __call__(self) -> None:
        error = _call_unchecked(self._ctx, self._fref, self._args, self._nargs, self._tref)
        if error or self._trap:
            trap = self._trap
            self._trap = ctypes.POINTER(ffi.wasm_trap_t)()
            self._tref = _byref(self._trap)
            _raise_from(error, trap)


HostCallback = Callable[[Any], None]
"""Receives the raw argument array; writes its result (if any) into slot 0."""

_HOST_CALLBACKS: dict[int, Callable[..., Any]] = {}
_host_ids = itertools.count(1)  # next() is atomic under the GIL


@ffi.wasmtime_func_unchecked_callback_t
def _dispatch(env: int, _caller: Any, args: Any, _nargs: int) -> int:
    try:
        _HOST_CALLBACKS[env or 0](args)
        return 0
    except BaseException as exc:  # a host bug must trap the guest, not unwind C
        message = f"host function failed: {type(exc).__name__}: {exc}".encode()
        trap = ffi.wasmtime_trap_new(ctypes.create_string_buffer(message), len(message))
        return ctypes.cast(trap, ctypes.c_void_p).value or 0


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _finalize(env: int) -> None:
    _HOST_CALLBACKS.pop(env or 0, None)


def host_func(store: wasmtime.Store, ty: wasmtime.FuncType, callback: HostCallback) -> Func:
    """A host function whose callback sees the raw argument array (no `Val` conversion).

    The callback is released by wasmtime's finalizer when the store drops the function.
    """
    env = next(_host_ids)
    _HOST_CALLBACKS[env] = callback
    out = ffi.wasmtime_func_t()
    _new_unchecked(store._context(), ty.ptr(), _dispatch, env, _finalize, _byref(out))
    return Func._from_raw(out)


DeadlineCallback = Callable[[], bool]
"""Called on the guest thread each time the store's epoch deadline is reached; True traps."""

_UPDATE_CONTINUE = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
# The trap message when the watch stops a guest that did not stop itself (its stop says why).
DEADLINE_TRAP = "vm-system: hard deadline reached"


@ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.POINTER(ffi.wasmtime_context_t), ctypes.c_void_p,
                  ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint8))
def _on_deadline(_ctx: Any, env: int, delta: Any, kind: Any) -> int:
    try:
        stop = _HOST_CALLBACKS[env or 0]()
    except BaseException as exc:  # a host bug must trap the guest, not unwind C
        stop = True
        message = f"deadline check failed: {type(exc).__name__}: {exc}"
    else:
        message = DEADLINE_TRAP
    if stop:
        error = _bindings.wasmtime_error_new(message.encode())
        return ctypes.cast(error, ctypes.c_void_p).value or 0
    delta[0] = 1  # check again at the next tick
    kind[0] = _UPDATE_CONTINUE
    return 0



def on_epoch_deadline(store: wasmtime.Store, callback: DeadlineCallback) -> None:
    """Let `callback` decide, at each epoch deadline of the store, whether the guest traps.

    Replaces wasmtime's default (trap at the deadline) with a check the host makes once per
    tick: the hard backstop for every time limit, without fuel instrumentation.
    """
    env = next(_host_ids)
    _HOST_CALLBACKS[env] = callback
    _bindings.wasmtime_store_epoch_deadline_callback(store.ptr(), _on_deadline, env, _finalize)


def new_args(size: int = 8) -> RawArgs:
    return (ffi.wasmtime_val_raw_t * size)()


def arg_slots(ty: wasmtime.FuncType) -> int:
    """Slots of the raw argument/result array a function of this type needs."""
    return max(len(ty.params), len(ty.results))


def set_global_i32(store: wasmtime.Store, global_: wasmtime.Global, value: int) -> None:
    val = ffi.wasmtime_val_t(kind=ffi.WASMTIME_I32.value)
    val.of.i32 = value
    error = _bindings.wasmtime_global_set(store._context(), ctypes.byref(global_._global), ctypes.byref(val))
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def install_funcs(store: wasmtime.Store, table: wasmtime.Table, funcs: list[Func]) -> int:
    """Append functions to a funcref table; returns the index of the first."""
    ctx = store._context()
    tref = ctypes.byref(table._table)
    val = ffi.wasmtime_val_t(kind=ffi.WASMTIME_FUNCREF.value)
    val.of.funcref = funcs[0]._func
    prev = ctypes.c_uint64(0)
    error = _bindings.wasmtime_table_grow(ctx, tref, len(funcs), ctypes.byref(val), ctypes.byref(prev))
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    for offset, func in enumerate(funcs[1:], start=1):
        val.of.funcref = func._func
        error = _bindings.wasmtime_table_set(ctx, tref, prev.value + offset, ctypes.byref(val))
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
    return prev.value


def export_extern(store: wasmtime.Store, instance: wasmtime.Instance, name: str) -> Any:
    """The raw `wasmtime_extern_t` of an export, or None. Cheaper than Instance.exports()."""
    item = ffi.wasmtime_extern_t()
    raw = name.encode()
    found = _bindings.wasmtime_instance_export_get(store._context(), ctypes.byref(instance._instance),
                                                   raw, len(raw), ctypes.byref(item))
    return item if found else None


def store_context(store: wasmtime.Store) -> Any:
    """The store's raw context pointer, for the raw entry points above."""
    return store._context()


def wrapped_export(store: wasmtime.Store, instance: wasmtime.Instance, name: str) -> Any:
    """An export as wasmtime-py's object (Memory, Table, Global...), or None."""
    item = export_extern(store, instance, name)
    return None if item is None else wrap_extern(item)


def export_func_handle(store: wasmtime.Store, instance: wasmtime.Instance, name: str) -> Any:
    """The raw function handle of an exported function (for RawFunc), or None."""
    item = export_extern(store, instance, name)
    if item is None or item.kind != ffi.WASMTIME_EXTERN_FUNC.value:
        return None
    return item.of.func


def memory_ref(memory: wasmtime.Memory) -> Any:
    """A reference to the memory's raw handle, for `memory_data_size`."""
    return _byref(memory._memory)


class GlobalI32:
    """Reads an i32 global without wasmtime-py's Val conversion (the stack pointer, read on
    every interrupt check)."""

    __slots__ = ("_ctx", "_raw", "_val", "_val_ref")

    def __init__(self, store: wasmtime.Store, global_: wasmtime.Global) -> None:
        self._ctx = store._context()
        self._raw = _byref(global_._global)
        self._val = ffi.wasmtime_val_t()
        self._val_ref = _byref(self._val)

    def get(self) -> int:
        _bindings.wasmtime_global_get(self._ctx, self._raw, self._val_ref)
        return self._val.of.i32 & 0xFFFFFFFF
