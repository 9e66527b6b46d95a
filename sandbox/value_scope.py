"""JS values held by the host, freed when the scope that holds them ends.

QuickJS counts references: every value a host call returns is the host's to free exactly once.
Freeing each by hand at every return path is how a leak or a double free creeps in, so the
evaluation code hands each value to a scope as it gets it, and the scope frees them all when
it is left normally.

A scope left by an exception frees nothing: the exceptions that cross it are traps and a
corrupted guest, after which the instance never runs again (the sandbox rolls back to a fresh
one), and calling into a trapped instance to free its values could trap again.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType


class ValueScope:
    # `_owned` is None while the scope is not open: one attribute serves as list and flag,
    # the fewest steps on a path every evaluation takes.
    __slots__ = ("_free", "_owned")

    def __init__(self, free: Callable[[int], None]) -> None:
        self._free = free
        self._owned: list[int] | None = None

    def __enter__(self) -> ValueScope:
        self._owned = []
        return self

    def own(self, value: int) -> int:
        """Hold `value` until the scope ends; returns it, to use at once."""
        owned = self._owned
        if owned is None:
            raise RuntimeError("a JS value handed to a scope that is not open")
        owned.append(value)
        return value

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        owned, self._owned = self._owned, None
        if owned and exc_type is None:
            free = self._free
            for value in reversed(owned):
                free(value)
