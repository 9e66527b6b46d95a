"""QuickJS's C interface as the host sees it through WebAssembly: the NaN-boxed JSValue tags,
the evaluation flags, the promise states, the exports the host calls and the signatures of
the callbacks it installs. Data only; `sandbox.instance` is what calls through it.
"""

from __future__ import annotations

from typing import Any

import wasmtime

# JSValue tags (high 32 bits of the NaN-boxed i64). Negative tags are heap values, which are
# reference counted.
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
NULL = TAG_NULL << 32


class NullReply:
    """A host callback's answer that is the JavaScript null (None is undefined)."""

    __slots__ = ()


NULL_REPLY = NullReply()


class StopScript:
    """A host callback's answer: a limit was crossed, the script stops (an uncatchable error)."""

    __slots__ = ()


STOP_SCRIPT = StopScript()
EXCEPTION = TAG_EXCEPTION << 32

# What the guest asks its host bridge (bootstrap.js's OP_*), and the turns the host gives it
# back (TURN_*): both sides must agree.
OP_CALL, OP_TIMER, OP_CLEAR = 1, 2, 3
TURN_RESOLVE, TURN_REJECT, TURN_FIRE, TURN_EXPOSE, TURN_RESET = 0, 1, 2, 3, 4

EVAL_GLOBAL = 0
EVAL_MODULE = 1
EVAL_STRICT = 1 << 3
EVAL_COMPILE_ONLY = 1 << 5

PROMISE_PENDING, PROMISE_FULFILLED, PROMISE_REJECTED = 0, 1, 2

# Every export the host calls; checked once per process (`sandbox.instance`).
EXPORTS = (
    "malloc", "free", "JS_NewRuntime", "JS_NewContext", "JS_Eval", "JS_Call",
    "JS_GetException", "JS_ToCStringLen2", "JS_FreeCString", "JS_FreeValue", "JS_DupValue",
    "JS_SetInterruptHandler", "JS_NewCFunction2", "JS_ExecutePendingJob", "JS_IsJobPending",
    "JS_PromiseState", "JS_PromiseResult", "JS_NewStringLen", "JS_GetPropertyUint32",
    "JS_EvalFunction", "JS_GetModuleNamespace", "JS_ThrowInternalError",
    "JS_SetUncatchableError", "JS_Throw", "JS_ResetUncatchableError", "JS_RunGC",
    "JS_SetHostPromiseRejectionTracker", "JS_ThrowOutOfMemory", "JS_SetModuleLoaderFunc",
    "JS_ThrowReferenceError", "JS_HasException", "js_malloc", "_initialize",
)

_i32, _i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
# JSInterruptHandler(rt, opaque) -> int
INTERRUPT_TYPE = wasmtime.FuncType([_i32, _i32], [_i32])
# JSCFunction(ctx, this, argc, argv) -> JSValue
CFUNCTION_TYPE = wasmtime.FuncType([_i32, _i64, _i32, _i32], [_i64])
# JSHostPromiseRejectionTracker(ctx, promise, reason, is_handled, opaque)
REJECTION_TYPE = wasmtime.FuncType([_i32, _i64, _i64, _i32, _i32], [])
# char *normalize(JSContext *, const char *base, const char *name, void *opaque)
NORMALIZE_TYPE = wasmtime.FuncType([_i32, _i32, _i32, _i32], [_i32])
# JSModuleDef *load(JSContext *, const char *name, void *opaque)
LOADER_TYPE = wasmtime.FuncType([_i32, _i32, _i32], [_i32])


def tag_of(value: int) -> int:
    return value >> 32


def is_heap(value: int) -> bool:
    """Whether a JSValue points into the heap (and so is reference counted)."""
    return value >> 32 < 0


def is_exception(value: int) -> bool:
    """Whether a call answered JS_EXCEPTION (the thrown value waits in the context)."""
    return value >> 32 == TAG_EXCEPTION  # tag_of, inlined: several calls per evaluation


def is_string(value: int) -> bool:
    return value >> 32 in (TAG_STRING, TAG_STRING_ROPE)


def int_value(value: int) -> int | None:
    """The number a JSValue tagged TAG_INT holds (None for any other tag)."""
    if value >> 32 != TAG_INT:
        return None
    n = value & 0xFFFFFFFF
    return n - (1 << 32) if n >= 1 << 31 else n


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
