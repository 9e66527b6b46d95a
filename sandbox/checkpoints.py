"""A sandbox's checkpoint copies: whole, or only the pages written since the last one.

Two buffers alternate for whole copies, so the checkpoint in use is never written while the
next one is taken. Once an instance's kept memory reaches `INCREMENTAL_MIN_BYTES` and the
kernel can track written pages (`sandbox.dirty_pages`), the large kept ranges (the heap) are
write-protected after a whole copy, and each later checkpoint of the same instance, at the same
memory size, updates the current buffer in place with the pages found writable by one scan.

Pages found written are left writable. Evaluations of a session write mostly the same pages
(a trivial one, the same ~20 pages of a 290 KiB heap, every time), and the first write to a
protected page costs a fault (~1.2 µs) where copying a page again costs ~0.2 µs; protecting
every page again at every checkpoint made a trivial evaluation on a big heap cost 85 µs.
Every `PROTECT_AGAIN_EVERY` tracked checkpoints the scan protects what it reports, so pages
a session stopped writing stop being copied. Ranges too small to be worth a scan are copied
whole every time.

In-place updates are safe because a checkpoint's image is only read while the sandbox is held
(restoring after a trap, cloning) and is replaced by the new one as soon as it is taken.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

from sandbox.dirty_pages import PAGE, DirtyPages, dirty_pages
from sandbox.instance import GuestInstance
from sandbox.memory_layout import MemoryImage

# Above a fresh sandbox's kept memory (~410 KiB since the bootstrap holds the event loop), so a
# fresh sandbox's checkpoints stay whole copies.
INCREMENTAL_MIN_BYTES = 448 * 1024
PROTECT_AGAIN_EVERY = 64
# A kept range below this is copied whole at every checkpoint (one scan costs ~2 µs).
_SCAN_MIN_BYTES = 64 * 1024
# Written ranges this close are copied as one: a copy call costs about what 4 KiB of copying does.
_MERGE_GAP = PAGE

Copy = tuple[int, int, int]  # (destination address, source address, length)


@dataclass
class _Tracked:
    instance: GuestInstance
    size: int  # the memory size the current buffer holds
    kept: int  # bytes of the image in it
    registered_end: int  # absolute end of the range registered with the tracker
    whole: tuple[Copy, ...]  # kept ranges copied whole every time
    scanned: tuple[tuple[int, int, int], ...]  # (start, end, image address) of tracked ranges
    checkpoints: int = 0
    last_written: list[list[tuple[int, int]]] = field(default_factory=list)
    last_plan: tuple[Copy, ...] = ()
    plan_bytes: int = 0


class CheckpointCopies:
    def __init__(self) -> None:
        self._spare = bytearray()
        self._current = bytearray()
        self._tracked: _Tracked | None = None
        # For tests and benchmarks: how many checkpoints were page updates, and how many
        # bytes the last checkpoint copied.
        self.incremental_copies = 0
        self.last_copied = 0

    def capture(self, inst: GuestInstance, size: int | None = None) -> MemoryImage:
        """A checkpoint of `inst` between evaluations; `size` its memory size if known."""
        if size is None:
            size = inst.memory_size()
        tracked = self._tracked
        if tracked is not None and tracked.instance is inst and tracked.size == size:
            tracker = dirty_pages()
            image = self._update(inst, tracked, tracker) if tracker is not None else None
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
        self.last_copied = needed
        self._spare, self._current = self._current, buffer
        self._tracked = self._track(inst, size, needed, buffer)
        return image

    def _track(self, inst: GuestInstance, size: int, kept: int, buffer: bytearray) -> _Tracked | None:
        """Write-protect the large kept ranges just copied, when worth it and possible."""
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
        dst = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
        whole: list[Copy] = []
        scanned: list[tuple[int, int, int]] = []
        for offset, src, length in inst.copy_plan(size):
            if length < _SCAN_MIN_BYTES:
                whole.append((dst + offset, src, length))
            else:
                if not tracker.protect(*_pages(src, src + length)):
                    return None
                scanned.append((src, src + length, dst + offset))
        return _Tracked(inst, size, kept, registered, tuple(whole), tuple(scanned))

    def _update(self, inst: GuestInstance, tracked: _Tracked, tracker: DirtyPages) -> MemoryImage | None:
        tracked.checkpoints += 1
        protect_again = tracked.checkpoints % PROTECT_AGAIN_EVERY == 0
        # First scan every tracked range, then copy: a failed scan leaves the buffer untouched,
        # and the caller takes a whole copy.
        written: list[list[tuple[int, int]]] = []
        for start, end, _ in tracked.scanned:
            found = tracker.written(*_pages(start, end), protect_again=protect_again)
            if found is None:
                self._tracked = None
                return None
            written.append(found)
        if written != tracked.last_written:
            tracked.last_written = written
            tracked.last_plan = _plan(tracked.scanned, written)
            tracked.plan_bytes = sum(c[2] for c in tracked.whole + tracked.last_plan)
        self.last_copied = tracked.plan_bytes
        memmove = ctypes.memmove
        for to, frm, length in tracked.whole:
            memmove(to, frm, length)
        for to, frm, length in tracked.last_plan:
            memmove(to, frm, length)
        return MemoryImage(memoryview(self._current)[:tracked.kept], tracked.size,
                           inst.rest_stack_pointer(), inst.layout)


def _plan(scanned: tuple[tuple[int, int, int], ...], written: list[list[tuple[int, int]]]) -> tuple[Copy, ...]:
    """The copies that bring the buffer up to date: written ranges clipped to their kept range,
    neighbours closer than _MERGE_GAP copied as one."""
    plan: list[Copy] = []
    # One list of written ranges per kept range.
    for (start, end, image_at), ranges in zip(scanned, written, strict=True):
        merged: list[list[int]] = []
        for w_start, w_end in ranges:
            s, e = max(w_start, start), min(w_end, end)
            if s >= e:
                continue
            if merged and s - merged[-1][1] <= _MERGE_GAP:
                merged[-1][1] = e
            else:
                merged.append([s, e])
        plan.extend((image_at + (s - start), s, e - s) for s, e in merged)
    return tuple(plan)


def _pages(start: int, end: int) -> tuple[int, int]:
    return start & ~(PAGE - 1), (end + PAGE - 1) & ~(PAGE - 1)
