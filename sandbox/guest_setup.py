"""Setting up a fresh guest: the C stack moved into its block, a QuickJS runtime and context,
the host's callbacks installed, the bootstrap run, and QuickJS's interrupt counter found.

Restored instances skip all of this: they get the result from an image.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Protocol

from sandbox.errors import GuestCorrupted
from sandbox.guest import guest_rodata_end
from sandbox.log import get_logger
from sandbox.memory_layout import DEFAULT_FILENAME, OLD_STACK, SOURCE_BUFFER, STACK_BLOCK, Layout
from sandbox.quickjs_abi import EVAL_GLOBAL, EVAL_STRICT, is_exception
from sandbox.value_scope import ValueScope

log = get_logger("sandbox.instance")

# What set-up leaves in a fresh instance changed (part of the pristine image cache key):
# 2 - the promise rejection tracker is installed. 3 - the host bridge and the loop's helper. 4 - the
# module loader.
SETUP_REVISION = 4

# Table slots of the host callbacks, relative to the instance's table base, in the order
# `GuestInstance` installs them: an image's runtime refers to these slots.
INTERRUPT_SLOT, CONSOLE_SLOT, REJECTION_SLOT, BRIDGE_SLOT, NORMALIZE_SLOT, LOADER_SLOT = range(6)
# describe, describeError, callGlobal, defineFrozenGlobal, turn
HELPERS = 5


class SetupTarget(Protocol):
    """What set-up uses of `sandbox.instance.GuestInstance`."""

    layout: Layout
    interrupt_calls: int

    def call_i32(self, name: str, *params: int) -> int: ...
    def malloc(self, size: int) -> int: ...
    def read(self, addr: int, size: int) -> bytes: ...
    def write(self, addr: int, data: bytes) -> None: ...
    def stack_pointer(self) -> int: ...
    def set_stack_pointer(self, value: int) -> None: ...
    def adopt_layout(self, layout: Layout, fill_old_stack: bool = False) -> None: ...
    def scope(self) -> ValueScope: ...
    def free_value(self, value: int) -> None: ...
    def eval_raw(self, source: bytes, flags: int, filename: bytes | None = None) -> int: ...
    def call_value(self, func: int, argv: list[int], this: int = ...) -> int: ...
    def new_c_function(self, table_index: int, name: bytes, length: int) -> int: ...
    def get_index(self, value: int, index: int) -> int: ...
    def exception_text(self) -> str: ...


def bootstrap_source() -> bytes:
    # A plain file beside this module (package data), read without importlib.resources,
    # whose import alone costs ~12 ms.
    return Path(__file__).with_name("bootstrap.js").read_bytes()


def initialise(inst: SetupTarget, table_base: int) -> Layout:
    """Set up a fresh instance; its layout."""
    inst.call_i32("_initialize")
    old_sp = inst.stack_pointer()
    block = inst.malloc(STACK_BLOCK + 16)
    if block == 0 or block < old_sp or old_sp - OLD_STACK < guest_rodata_end():
        raise GuestCorrupted("could not place the stack block above the old stack")
    stack_lo = (block + 15) & ~15
    stack_hi = stack_lo + STACK_BLOCK
    inst.set_stack_pointer(stack_hi)
    old_stack_lo = old_sp - OLD_STACK
    rt = inst.call_i32("JS_NewRuntime")
    ctx = inst.call_i32("JS_NewContext", rt)
    scratch = inst.malloc(16)
    filename = inst.malloc(16)
    source = inst.malloc(SOURCE_BUFFER)
    if not (rt and ctx and scratch and filename and source):
        raise GuestCorrupted("QuickJS failed to initialise")
    inst.write(filename, DEFAULT_FILENAME + b"\0")
    inst.call_i32("JS_SetInterruptHandler", rt, table_base + INTERRUPT_SLOT, 0)
    inst.call_i32("JS_SetHostPromiseRejectionTracker", rt, table_base + REJECTION_SLOT, 0)
    # Every import goes through the host, which refuses it unless a loader is given.
    inst.call_i32("JS_SetModuleLoaderFunc", rt, table_base + NORMALIZE_SLOT,
                  table_base + LOADER_SLOT, 0)
    # Clears what _initialize left on the old stack.
    inst.adopt_layout(Layout(rt, ctx, scratch, filename, source, stack_lo, stack_hi, old_stack_lo,
                             (0, 0, 0, 0), table_base, guest_rodata_end(), 0), fill_old_stack=True)
    helpers = _run_bootstrap(inst, table_base + CONSOLE_SLOT, table_base + BRIDGE_SLOT)
    counter = _find_interrupt_counter(inst)
    return Layout(rt, ctx, scratch, filename, source, stack_lo, stack_hi, old_stack_lo,
                  helpers, table_base, guest_rodata_end(), counter)


def _run_bootstrap(inst: SetupTarget, console_index: int, bridge_index: int) -> tuple[int, ...]:
    with inst.scope() as scope:
        host_console = scope.own(inst.new_c_function(console_index, b"console", 2))
        host_bridge = scope.own(inst.new_c_function(bridge_index, b"host", 3))
        fn = inst.eval_raw(bootstrap_source(), EVAL_GLOBAL | EVAL_STRICT, b"<vm-system>")
        if is_exception(fn):
            raise GuestCorrupted("the bootstrap script failed: " + inst.exception_text())
        scope.own(fn)
        helpers_array = inst.call_value(fn, [host_console, host_bridge])
        if is_exception(helpers_array):
            raise GuestCorrupted("the bootstrap script failed: " + inst.exception_text())
        scope.own(helpers_array)
        # The helpers stay alive for the runtime's life: not handed to the scope.
        return tuple(inst.get_index(helpers_array, i) for i in range(HELPERS))


def _find_interrupt_counter(inst: SetupTarget) -> int:
    """Locate QuickJS's interrupt counter in the JSContext by watching it count down.

    The field's offset is not part of any API, so it is found, then verified: set to 1, the
    next loop must call the interrupt handler at once. Not found: 0 (no pokes; the limits
    still hold, only less promptly during long native calls).
    """
    ctx = inst.layout.ctx
    words = 512

    def snapshot() -> tuple[int, ...]:
        return struct.unpack(f"<{words}i", inst.read(ctx, words * 4))

    def spin(n: int) -> None:
        inst.free_value(inst.eval_raw(f"for (let i = 0; i < {n}; i++) {{}}".encode(), EVAL_GLOBAL))

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
    inst.write(address, (1).to_bytes(4, "little"))
    before = inst.interrupt_calls
    spin(10)
    if inst.interrupt_calls == before:
        log.warning("interrupt_counter_not_verified", offset=candidates[0] * 4)
        return 0
    return address
