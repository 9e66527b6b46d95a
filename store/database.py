"""Connections to the SQLite file: one writer, one reader per thread, transactions.

Why this shape:
* One writer connection shared by all threads, behind a process-wide lock: writes are
  serialised in-process without SQLite's busy-wait (which sleeps in steps of milliseconds),
  and the writer keeps its prepared statements warm for the streaming path.
* Every write transaction starts with BEGIN IMMEDIATE: the database write lock is taken up
  front, so a transaction never fails half-way with "database is locked" because another
  process wrote first. While another process holds it, BEGIN IMMEDIATE is retried here with
  pauses from 50 µs (`_begin_immediate`), not by SQLite's busy handler, which sleeps at least
  a millisecond: processes that share the file (a daemon's worker processes) write every few
  hundred microseconds each.
* One reader connection per thread (WAL: readers never block the writer or each other), opened
  `query_only` so a read path can never write by accident. `snapshot()` groups several reads
  into one consistent view.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import sqlite_utils
import structlog

from .errors import InvalidValue, StoreClosed, StoreError, StoreOpenError, StoreReadError, StoreWriteError
from .faults import FaultInjector
from .schema import check_not_too_new, migrate

log = structlog.get_logger("store.database")

SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


def _connect(path: Path, busy_timeout_s: float, *, query_only: bool) -> sqlite3.Connection:
    # isolation_level=None: the driver never opens a transaction on its own; every
    # transaction in this package is explicit. check_same_thread=False: the writer is shared
    # under a lock, and close() closes readers from the closing thread.
    conn = sqlite3.connect(
        str(path),
        timeout=busy_timeout_s,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=256,
    )
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        if query_only:
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, timeout_s: float) -> str:
    """Switch a file to WAL, waiting for other openers of a brand-new file.

    Leaving rollback-journal mode needs an exclusive lock, and SQLite answers SQLITE_BUSY at
    once, without calling the busy handler, when two connections would deadlock on it: two
    processes creating the same file at the same moment hit that. Once the file is in WAL
    (every later open), this is a plain read.
    """
    return str(_while_busy(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0],
                           timeout_s, first_pause_s=0.001, max_pause_s=0.05))


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorname", "").startswith("SQLITE_BUSY")


T = TypeVar("T")


def _while_busy(attempt: Callable[[], T], timeout_s: float, *, first_pause_s: float,
                max_pause_s: float) -> T:
    """`attempt()`, tried again after pauses doubling from `first_pause_s` while SQLite
    answers SQLITE_BUSY, for up to `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    pause = first_pause_s
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, max_pause_s)


def _begin_immediate(conn: sqlite3.Connection, timeout_s: float) -> None:
    """BEGIN IMMEDIATE on the writer (whose own busy timeout is 0), waiting up to `timeout_s`
    for another process's write transaction to end: from 50 µs (a transaction of this store
    holds the lock for well under a millisecond), doubling up to 2 ms."""
    _while_busy(lambda: conn.execute("BEGIN IMMEDIATE"), timeout_s,
                first_pause_s=0.00005, max_pause_s=0.002)


def _wrap(conn: sqlite3.Connection) -> sqlite_utils.Database:
    # No plugins: an installed sqlite-utils plugin must not change how our connections behave.
    return sqlite_utils.Database(conn, execute_plugins=False, recursive_triggers=False)


class _WriteTransaction:
    """The context manager behind `Database.write`.

    A class rather than @contextmanager: it runs once per streamed event, and the generator
    machinery costs several microseconds per use.
    """

    __slots__ = ("_db", "_op", "_conn")
    _conn: sqlite3.Connection | None

    def __init__(self, db: Database, op: str) -> None:
        self._db = db
        self._op = op

    def __enter__(self) -> sqlite3.Connection:
        db = self._db
        db._write_lock.acquire()
        self._conn = None
        try:
            if db._closed:
                raise StoreClosed("the store is closed")
            conn = self._conn = db._writer.conn
            _begin_immediate(conn, db._busy_timeout_s)
            if db._faults is not None:
                db._faults.check(self._op, "begin")
        except BaseException as exc:
            translated = self._abort(exc)
            if translated is not None:
                raise translated from exc
            raise
        return conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            try:
                if self._db._faults is not None:
                    self._db._faults.check(self._op, "commit")
                self._conn.execute("COMMIT")  # type: ignore[union-attr]
            except BaseException as commit_exc:
                translated = self._abort(commit_exc)
                if translated is not None:
                    raise translated from commit_exc
                raise
            self._db._write_lock.release()
            return
        translated = self._abort(exc)
        if translated is not None:
            raise translated from exc
        # Anything else (the store's own typed errors included) propagates unchanged.

    def _abort(self, exc: BaseException) -> StoreError | None:
        """Roll back and release the lock; return the typed error to raise for `exc`, if
        it needs one (a sqlite3 error becomes StoreWriteError)."""
        try:
            if self._conn is not None:
                Database._rollback(self._conn, self._op)
        finally:
            self._db._write_lock.release()
        if isinstance(exc, sqlite3.Error):
            return StoreWriteError(self._op, exc)
        if isinstance(exc, UnicodeEncodeError):
            # The only text UTF-8 cannot encode is a lone surrogate (a Python str can hold one,
            # from a JavaScript string or a JSON \ud800 escape), bound to a TEXT column: the
            # caller's value, refused as such, in every write of the store alike. (JSON columns
            # keep them as \u escapes.)
            return InvalidValue(f"{self._op}: a text value holds a lone surrogate (an unpaired "
                                f"\\ud800-\\udfff code point) at position {exc.start}, which is not Unicode text")
        return None


class Database:
    def __init__(
        self,
        path: Path,
        writer: sqlite_utils.Database,
        *,
        busy_timeout_s: float,
        faults: FaultInjector | None,
    ) -> None:
        self.path = path
        self._writer = writer
        self._busy_timeout_s = busy_timeout_s
        self._faults = faults
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers_lock = threading.Lock()
        self._readers: list[tuple[weakref.ref[threading.Thread], sqlite_utils.Database]] = []
        self._closed = False

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        busy_timeout_s: float = 5.0,
        synchronous: str = "NORMAL",
        faults: FaultInjector | None = None,
    ) -> Database:
        path = Path(path)
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS_MODES)}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(path, busy_timeout_s, query_only=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreOpenError(f"cannot open {path}: {exc}") from exc
        try:
            # Before anything that writes (journal_mode writes the file header): a file from
            # a newer vm-system must come out of this untouched.
            check_not_too_new(conn, str(path))
            mode = _enable_wal(conn, busy_timeout_s)
            if mode.lower() != "wal":
                raise StoreOpenError(f"{path}: cannot switch to WAL (journal_mode is {mode})")
            # Under WAL, NORMAL never corrupts the file; a power cut (not a process crash) can
            # lose the last transactions. See docs/store.md.
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            # The WAL file is reused, not shrunk: without a limit one big transaction would
            # leave it at its peak size for good.
            conn.execute("PRAGMA journal_size_limit = 67108864")
            migrate(conn, str(path))
            # From here on the writer waits for other processes in _begin_immediate.
            conn.execute("PRAGMA busy_timeout = 0")
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise StoreOpenError(f"cannot open {path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(path, _wrap(conn), busy_timeout_s=busy_timeout_s, faults=faults)

    # --- writes -------------------------------------------------------------------------

    def write(self, op: str) -> _WriteTransaction:
        """One write transaction (`with db.write("op") as conn:`); any failure rolls all of
        it back and is raised typed. `op` names the operation in errors and for the fault
        injector.
        """
        return _WriteTransaction(self, op)

    @staticmethod
    def _rollback(conn: sqlite3.Connection, op: str) -> None:
        # Some errors (SQLITE_FULL, SQLITE_IOERR at commit) already rolled the transaction
        # back inside SQLite; ROLLBACK then would itself fail.
        if not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.error("store.rollback_failed", op=op, error=str(exc))
            raise StoreWriteError(op, exc) from exc

    # --- reads --------------------------------------------------------------------------

    def reader(self) -> sqlite_utils.Database:
        """This thread's read connection, opened on first use."""
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is not None and not self._closed:
            return db
        if self._closed:
            raise StoreClosed("the store is closed")
        try:
            db = _wrap(_connect(self.path, self._busy_timeout_s, query_only=True))
        except sqlite3.Error as exc:
            raise StoreReadError("connect", exc) from exc
        with self._readers_lock:
            self._reap_dead_readers()
            self._readers.append((weakref.ref(threading.current_thread()), db))
        self._local.db = db
        return db

    def _reap_dead_readers(self) -> None:
        # A daemon's worker threads come and go; their connections must not pile up.
        alive = []
        for thread_ref, db in self._readers:
            thread = thread_ref()
            if thread is not None and thread.is_alive():
                alive.append((thread_ref, db))
            else:
                db.conn.close()
        self._readers = alive

    @contextmanager
    def read(self, op: str) -> Iterator[sqlite_utils.Database]:
        db = self.reader()
        try:
            yield db
        except sqlite3.Error as exc:
            raise StoreReadError(op, exc) from exc

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads on this thread inside the block all see the same committed state."""
        db = self.reader()
        conn = db.conn
        if conn.in_transaction:  # nested: the outer snapshot already holds the view
            yield
            return
        try:
            conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StoreReadError("snapshot", exc) from exc
        try:
            yield
        finally:
            if conn.in_transaction:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    raise StoreReadError("snapshot", exc) from exc

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        # Taking the write lock lets a write in progress on another thread finish first.
        with self._write_lock:
            self._closed = True
            with self._readers_lock:
                for _, db in self._readers:
                    db.conn.close()
                self._readers = []
            self._writer.conn.close()


def unique_violation(exc: sqlite3.IntegrityError) -> str | None:
    """The columns of a violated UNIQUE/PRIMARY KEY constraint ("t.a, t.b"), else None.

    SQLite reports them only in the message; the error name tells the kind of constraint.
    """
    if getattr(exc, "sqlite_errorname", "") not in (
        "SQLITE_CONSTRAINT_UNIQUE",
        "SQLITE_CONSTRAINT_PRIMARYKEY",
    ):
        return None
    message = str(exc)
    prefix = "UNIQUE constraint failed: "
    return message[len(prefix) :] if message.startswith(prefix) else None


def fetch_dict(
    conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()
) -> dict[str, Any] | None:
    """One row as a dict, read on a raw connection (inside a write transaction)."""
    cursor = conn.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))
