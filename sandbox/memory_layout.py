"""Where things are in a guest's linear memory, and what a checkpoint of it holds.

The layout is fixed when an instance is set up and is the same in every image made from it;
`MemoryImage` is linear memory at a quiescent point, as the checkpoints, the pristine cache
and signed images carry it.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

PAGE = 65536

# The C shadow stack is moved into a block of this size (see docs/engine.md, "The stack").
# The lowest STACK_GUARD bytes of the block, and the old 64 KiB stack region below it, are
# guard regions checked after every evaluation (`sandbox.stack_guards`).
STACK_BLOCK = 1024 * 1024
STACK_GUARD = 64 * 1024
OLD_STACK = 64 * 1024
# The interrupt handler stops a script gracefully when the stack pointer enters this zone.
STACK_RED_ZONE = 128 * 1024
# A buffer kept for the host's short texts, so that they need no malloc and free (each a call
# into the guest): a source to evaluate, a string to make (a host call's answer, a turn's text).
# Its last ARGV_BYTES hold the arguments of the host's JS_Call, which the callee may read in
# place while it runs (QuickJS does not always copy them), so texts stay below SHORT_TEXT.
SOURCE_BUFFER = 4096
ARGV_SLOTS = 8
ARGV_BYTES = 8 * ARGV_SLOTS
SHORT_TEXT = SOURCE_BUFFER - ARGV_BYTES
DEFAULT_FILENAME = b"<input>"


@dataclass(frozen=True)
class Layout:
    """Addresses inside the guest that the host relies on; identical in every image."""

    rt: int
    ctx: int
    scratch: int  # 16 bytes for out-parameters
    filename: int  # "<input>\0"
    source: int  # SOURCE_BUFFER bytes for short texts and the host's call arguments
    stack_lo: int  # lowest byte of the stack block (its guard region starts here)
    stack_hi: int  # initial stack pointer (top of the block)
    old_stack_lo: int
    # describe, describeError, callGlobal, defineFrozenGlobal, turn (the event loop's; 0 in an
    # image made before the host bridge existed: its guest has no timers and no `host`)
    helpers: tuple[int, ...]
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

    def guard_ranges(self) -> tuple[tuple[int, int], ...]:
        """[start, end) of the stack block's guard region and of the old stack region."""
        return ((self.stack_lo, self.stack_lo + STACK_GUARD),
                (self.old_stack_lo, self.old_stack_lo + OLD_STACK))

    def stack_pointer_escaped(self, sp: int) -> bool:
        """True if `sp` is outside the usable part of the stack block."""
        return not (self.stack_lo + STACK_GUARD <= sp <= self.stack_hi)

    def in_red_zone(self, sp: int) -> bool:
        return sp < self.stack_lo + STACK_GUARD + STACK_RED_ZONE

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

    def fits(self, memory: int) -> bool:
        """Whether the image's copies and guards stay inside `memory` bytes. The host copies
        with memmove, which no wasm bounds check protects; decode_image validated signed
        images already, and this holds for every image, whatever made it."""
        lay = self.layout
        ranges = lay.kept_ranges(self.size)
        return (self.size <= memory
                and all(0 <= start <= end <= self.size for start, end in ranges + lay.guard_ranges())
                and sum(end - start for start, end in ranges) == len(self.data))


def buffer_address(data: bytes | bytearray | memoryview) -> int:
    """The address of a buffer's first byte, without copying it."""
    if isinstance(data, bytes):
        return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
    return ctypes.addressof(ctypes.c_char.from_buffer(data))
