"""The guard regions around the guest's shadow stack, filled and checked from the host.

The block guard holds a pattern (a frame's writes are rarely all 0xA5). The old stack region
below the block stays zero: a restored instance's fresh memory already is, so restoring costs
no writes there; any overflow reaching it has crossed the patterned guard first.
"""

from __future__ import annotations

import ctypes

from sandbox.memory_layout import OLD_STACK, STACK_GUARD, Layout

GUARD_BYTE = 0xA5
_GUARD_PATTERN = bytes([GUARD_BYTE]) * STACK_GUARD
_ZEROS = bytes(OLD_STACK)
_GUARD_WORD = _GUARD_PATTERN[:8]
_ZERO_WORD = bytes(8)

_memcmp = ctypes.CDLL(None).memcmp
_memcmp.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
_memcmp.restype = ctypes.c_int


class StackGuards:
    """The two guard regions of one instance, at host addresses fixed for its life."""

    __slots__ = ("_guard", "_old")

    def __init__(self, base_address: int, layout: Layout) -> None:
        self._guard = base_address + layout.stack_lo
        self._old = base_address + layout.old_stack_lo

    def fill(self, old_stack: bool = True) -> None:
        ctypes.memmove(self._guard, _GUARD_PATTERN, STACK_GUARD)
        if old_stack:
            ctypes.memmove(self._old, _ZEROS, OLD_STACK)

    def intact(self) -> bool:
        """False if the shadow stack ever ran into a guard region: the instance is corrupt."""
        guard, old = self._guard, self._old
        # A region equal to itself shifted by 8 bytes holds one repeated 8-byte word; its
        # first word then decides. One pass over memory instead of two (memory and pattern).
        return (_memcmp(guard, guard + 8, STACK_GUARD - 8) == 0
                and _memcmp(guard, _GUARD_WORD, 8) == 0
                and _memcmp(old, old + 8, OLD_STACK - 8) == 0
                and _memcmp(old, _ZERO_WORD, 8) == 0)
