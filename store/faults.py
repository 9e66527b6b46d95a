"""The test seam for write failures.

A `FaultInjector` handed to `Store.open(..., faults=...)` is consulted by the real store
inside every write transaction. When armed for an operation it raises the error SQLite would
raise on a failing disk, at a chosen point of the transaction: `"begin"` (the write lock is
held, nothing written yet) or `"commit"` (every statement of the operation has run and only
COMMIT is left, the case that proves nothing is half-written). The real error path then
runs: rollback, translation into `StoreWriteError`.

Production stores are opened without one, and pay nothing for it.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Literal

FaultPoint = Literal["begin", "commit"]


@dataclass
class _Armed:
    op: str
    at: FaultPoint
    error: BaseException
    remaining: int
    skip: int


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []
        self.fired: list[tuple[str, FaultPoint]] = []

    def fail_next(
        self,
        op: str,
        *,
        at: FaultPoint = "commit",
        error: BaseException | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """Make write transactions of `op` fail at point `at`: let `after` of them pass,
        then fail the next `times`.

        `op` is the name of the Store method (`"finish_execution"`, `"append_events"`, ...;
        `"prune"` for each prune batch).
        """
        if error is None:
            error = sqlite3.OperationalError("disk I/O error (injected by FaultInjector)")
        with self._lock:
            self._armed.append(_Armed(op, at, error, times, after))

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def check(self, op: str, at: FaultPoint) -> None:
        with self._lock:
            for armed in self._armed:
                if armed.op == op and armed.at == at:
                    if armed.skip > 0:
                        armed.skip -= 1
                        return
                    armed.remaining -= 1
                    if armed.remaining <= 0:
                        self._armed.remove(armed)
                    self.fired.append((op, at))
                    raise armed.error
