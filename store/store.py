"""`Store`: the one object the rest of vm-system uses to persist things.

The operations live in topical modules (templates, sessions, executions, images,
maintenance, packages) as mixins; this module only opens, composes and closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from .database import Database
from .encoding import Clock, utc_now
from .executions import ExecutionsMixin
from .faults import FaultInjector
from .images import ImagesMixin
from .maintenance import MaintenanceMixin
from .packages import PackagesMixin
from .sessions import SessionsMixin
from .templates import TemplatesMixin


class Store(TemplatesMixin, SessionsMixin, ExecutionsMixin, ImagesMixin, MaintenanceMixin, PackagesMixin):
    """Thread-safe: one Store can be shared by every thread of a process (writes are
    serialised, reads run in parallel). Several processes may open the same file."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        busy_timeout_s: float = 5.0,
        synchronous: str = "NORMAL",
        clock: Clock | None = None,
        faults: FaultInjector | None = None,
    ) -> Store:
        """Open (creating it and its parent directories if needed) and migrate the file.

        Raises SchemaTooNew, leaving the file untouched, if a newer vm-system wrote it.
        `synchronous="FULL"` trades streaming speed for surviving power loss (docs/store.md).
        `clock` (returns an aware UTC datetime) and `faults` are for tests.
        """
        db = Database.open(
            path, busy_timeout_s=busy_timeout_s, synchronous=synchronous, faults=faults
        )
        return cls(db, clock or utc_now)

    @property
    def path(self) -> Path:
        return self._db.path

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads of this thread inside the block see one consistent committed state."""
        with self._db.snapshot():
            yield

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
