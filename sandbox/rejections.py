"""Promises rejected without a handler, held until the end of the evaluation.

QuickJS tells the host through its rejection tracker, which runs inside the guest: no script
code may run there, only reference counting, which the instance does for the tracker.
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox.quickjs_abi import is_heap

# Past this many at once they are only counted (each held one keeps its promise and reason
# alive in the guest).
MAX_HELD_REJECTIONS = 20


class RejectionTracker:
    def __init__(self, dup: Callable[[int], None], free: Callable[[int], None]) -> None:
        self._dup = dup  # called inside the guest: nested calls
        self._free = free
        self._held: dict[int, int] = {}  # promise -> reason, both held (duplicated)
        self.not_held = 0

    def on_rejection(self, promise: int, reason: int, handled: bool) -> None:
        """A promise was rejected without a handler (handled False), or one got its first
        handler after such a rejection (True)."""
        held = self._held
        if handled:
            reason_held = held.pop(promise, None)
            if reason_held is not None:
                self._free(promise)
                self._free(reason_held)
            return
        if promise in held:
            return
        if len(held) >= MAX_HELD_REJECTIONS:
            self.not_held += 1
            return
        held[promise] = reason
        for value in (promise, reason):
            if is_heap(value):
                self._dup(value)

    @property
    def any(self) -> bool:
        return bool(self._held) or self.not_held > 0

    def take(self) -> tuple[list[tuple[int, int]], int]:
        """The rejections still unhandled, held (the caller frees both values), and how many
        more were only counted; the tracker forgets them all."""
        held, self._held = list(self._held.items()), {}
        counted, self.not_held = self.not_held, 0
        return held, counted

    def forget(self, promise: int, reason: int, free: Callable[[int], None]) -> None:
        """The evaluation's own result was rejected with `reason`: it is reported as the
        evaluation's error, so neither that promise nor one rejected with the same object
        (a module's inner evaluation promise) is reported as unhandled. `free` is the
        caller's (outside the guest, not nested)."""
        same = [p for p, r in self._held.items() if p == promise or (r == reason and is_heap(reason))]
        for p in same:
            free(p)
            free(self._held.pop(p))
