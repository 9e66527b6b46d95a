"""A sandbox's checkpoint copies: whole, or only the pages written since the last one.

Two buffers alternate for whole copies, so the checkpoint in use is never written while the
next one is taken. Once an instance's kept memory reaches `INCREMENTAL_MIN_BYTES` and the
kernel can track written pages (`sandbox.dirty_pages`), its kept ranges are write-protected
after a whole copy, and each later checkpoint of the same instance, at the same memory size,
updates the current buffer in place with the pages written since: a checkpoint costs what the
evaluation touched, not the size of the heap. Below that size a whole copy is cheaper than the
page faults the tracking costs (~1.5 µs for each page written after a checkpoint).

In-place updates are safe because a checkpoint's image is only read while the sandbox is held
(restoring after a trap, cloning) and is replaced by the new one as soon as it is taken.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from sandbox.dirty_pages import PAGE, DirtyPages, dirty_pages
from sandbox.instance import GuestInstance, MemoryImage

INCREMENTAL_MIN_BYTES = 2 * 1024 * 1024


@dataclass
class _Tracked:
    instance: GuestInstance
    size: int  # the memory size the current buffer holds, and up to which pages are tracked
    registered_end: int  # absolute end of the range registered with the tracker


class CheckpointCopies:
    def __init__(self) -> None:
        self._spare = bytearray()
        self._current = bytearray()
        self._tracked: _Tracked | None = None
        self.incremental_copies = 0  # how many checkpoints were page updates (tests read it)

    def capture(self, inst: GuestInstance, size: int | None = None) -> MemoryImage:
        """A checkpoint of `inst` between evaluations; `size` its memory size if known."""
        if size is None:
            size = inst.memory_size()
        tracked = self._tracked
        if tracked is not None and tracked.instance is inst and tracked.size == size:
            tracker = dirty_pages()
            image = self._update(inst, size, tracker) if tracker is not None else None
            if image is not None:
                self.incremental_copies += 1
                return image
        return self._whole(inst, size)

    def _whole(self, inst: GuestInstance, size: int) -> MemoryImage:
        needed = inst.capture_size(size)
        buffer = self._spare
        if len(buffer) < needed:
            buffer = bytearray(needed + needed // 4)  # room to grow without reallocating
        image = inst.capture(into=buffer, size=size)
        self._spare, self._current = self._current, buffer
        self._tracked = self._track(inst, size, needed)
        return image

    def _track(self, inst: GuestInstance, size: int, kept: int) -> _Tracked | None:
        """Write-protect the kept ranges just copied, when worth it and possible."""
        tracker = dirty_pages() if kept >= INCREMENTAL_MIN_BYTES else None
        if tracker is None:
            return None
        base = inst.base_address()
        previous = self._tracked
        registered = previous.registered_end if previous is not None and previous.instance is inst else base
        if base + size > registered:
            # Registering is needed once per range of an instance (growth adds a range); only
            # the kept ranges are protected, so writes to the stack block are never tracked.
            if not tracker.register(registered, base + size):
                return None
            registered = base + size
        for start, end in inst.layout.kept_ranges(size):
            lo, hi = _pages(base + start, base + end)
            if not tracker.protect(lo, hi):
                return None
        return _Tracked(inst, size, registered)

    def _update(self, inst: GuestInstance, size: int, tracker: DirtyPages) -> MemoryImage | None:
        base = inst.base_address()
        buffer = self._current
        dst = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
        offset = 0
        # First collect every range's written pages (protecting them again), then copy: a
        # failed scan leaves the buffer untouched, and the caller takes a whole copy.
        plan: list[tuple[int, int, int]] = []
        for start, end in inst.layout.kept_ranges(size):
            lo, hi = _pages(base + start, base + end)
            written = tracker.collect(lo, hi)
            if written is None:
                self._tracked = None
                return None
            for w_start, w_end in written:
                s = max(w_start - base, start)
                e = min(w_end - base, end)
                if s < e:
                    plan.append((dst + offset + (s - start), base + s, e - s))
            offset += end - start
        for to, frm, length in plan:
            ctypes.memmove(to, frm, length)
        return MemoryImage(memoryview(buffer)[:offset], size, inst.stack_pointer(), inst.layout)


def _pages(start: int, end: int) -> tuple[int, int]:
    return start & ~(PAGE - 1), (end + PAGE - 1) & ~(PAGE - 1)
