"""Copying a guest's kept memory out into a checkpoint and back into a fresh instance."""

from __future__ import annotations

import ctypes

from sandbox.memory_layout import Layout, MemoryImage, buffer_address

Copy = tuple[int, int, int]  # (offset in the image, host address, length)


def copy_plan(base_address: int, layout: Layout, size: int) -> tuple[Copy, ...]:
    """Where each kept range of a memory of `size` bytes goes in an image."""
    plan, offset = [], 0
    for start, end in layout.kept_ranges(size):
        plan.append((offset, base_address + start, end - start))
        offset += end - start
    return tuple(plan)


def copy_out(plan: tuple[Copy, ...], into: bytearray | None) -> bytes | memoryview:
    """The kept bytes, copied into `into` (viewed, not copied again) or a new bytes object.

    Copying into warm pages costs a third of a fresh allocation."""
    total = plan[-1][0] + plan[-1][2]
    target = into if into is not None else bytearray(total)
    dst = ctypes.addressof(ctypes.c_char.from_buffer(target))
    memmove = ctypes.memmove
    for offset, src, length in plan:
        memmove(dst + offset, src, length)
    return memoryview(target)[:total] if into is not None else bytes(target)


def copy_in(base_address: int, image: MemoryImage) -> None:
    """Write an image's kept ranges into memory starting at `base_address`; the caller has
    checked that the image fits (`MemoryImage.fits`)."""
    src = buffer_address(image.data)
    offset = 0
    for start, end in image.layout.kept_ranges(image.size):
        ctypes.memmove(base_address + start, src + offset, end - start)
        offset += end - start
