"""The host half of the `database` module: one session's private SQLite file, reachable by the
script through `query` and `exec` and nothing else.

Everything that keeps a script inside its own file is set on the connection before the first
statement of the script is prepared: limits (`setlimit`: no attached database, bounded values,
SQL, columns and trigger depth), the size cap (`max_page_count` on `main` and `temp`), an
authorizer (ATTACH, VACUUM, file-reaching functions, writable or path-revealing PRAGMAs and
virtual table modules outside an allowlist are denied when a statement is prepared), and a
progress handler that ends a statement at the execution's deadline or stop.

Values cross as JSON. What JSON cannot hold as a plain value leaves as a one-key object the
guest half turns into the JavaScript value: `{"$blob": base64}` (a BLOB), `{"$bigint": "digits"}`
(an INTEGER beyond ±(2^53 - 1)), `{"$number": "Infinity" | "-Infinity"}` (a REAL overflow).
"""

from __future__ import annotations

import base64
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from operator import is_not
from typing import Any

from supervisor.modules.errors import ModuleError

DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_RESULT_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
DEFAULT_MAX_COLUMNS = 100

# What one batch of rows may hold in host memory at most before it is measured, if every value
# were as large as a value may be (max_value_bytes).
FETCH_MEMORY = 128 * 1024 * 1024

# VM steps between two deadline checks. A check is a Python call (~0.3 µs here), a step tens of
# ns: at 200 a short query pays a few checks, and a runaway statement ends within ~0.2 ms of
# the deadline (a few ms when each step makes a large value; scratch/db/overshoot_db.py).
PROGRESS_STEPS = 200

# JavaScript's Number.MAX_SAFE_INTEGER: an integer beyond it would arrive in the script changed.
MAX_SAFE_INTEGER = 2**53 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# A PRAGMA the script may run: read-only ones with no argument or a table or index name for
# argument, and the few settings that only change how the script's own statements behave.
READ_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
    "collation_list", "function_list", "module_list", "pragma_list", "compile_options",
    "page_count", "page_size", "freelist_count", "max_page_count", "data_version",
    "encoding", "schema_version",
})
# Read-only pragmas whose argument would *set* something (page_size=512 changes what the size
# cap counts, schema_version=N corrupts the schema, encoding switches a new file's encoding).
NO_ARGUMENT_PRAGMAS = frozenset({
    "page_size", "max_page_count", "encoding", "schema_version", "page_count",
    "freelist_count", "data_version", "collation_list", "function_list", "module_list",
    "pragma_list", "compile_options", "table_list",
})
SETTABLE_PRAGMAS = frozenset({
    "user_version", "application_id", "foreign_keys", "defer_foreign_keys", "recursive_triggers",
})

# fts3_tokenizer with two arguments installs a tokenizer from a raw pointer (and with one it
# reveals an address); load_extension loads a shared library; the others read or write files
# where a build has them, or hand out pointers.
DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit", "fts5"})
VTABLE_MODULES = frozenset({"fts5", "rtree", "rtree_i32"})
# Eponymous virtual tables that need no CREATE: dbstat and sqlite_dbpage read (and the latter
# writes) raw pages; sqlite_stmt lists the connection's statements, the host's among them.
DENIED_TABLES = frozenset({"dbstat", "sqlite_dbpage", "sqlite_stmt"})

_OK, _DENY = sqlite3.SQLITE_OK, sqlite3.SQLITE_DENY
_not_none = partial(is_not, None)


@dataclass(frozen=True)
class Limits:
    """The ceilings of one database (see docs: each has its own error)."""

    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    max_columns: int = DEFAULT_MAX_COLUMNS


def _never() -> bool:
    return False


class SessionDatabase:
    """A session's SQLite database, open until `close()`."""

    def __init__(self, path: str, *, max_rows: int = DEFAULT_MAX_ROWS, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES, max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
                 max_columns: int = DEFAULT_MAX_COLUMNS) -> None:
        if not isinstance(path, str) or not os.path.isabs(path) or "\0" in path:
            # The integrator's mistake, not the script's: a relative path would depend on the
            # daemon's working directory, and "file:..." would be read as a URI.
            raise ValueError("SessionDatabase needs an absolute file path")
        if min(max_rows, max_bytes, max_result_bytes, max_value_bytes, max_columns) < 1:
            raise ValueError("SessionDatabase limits must be positive")
        self.limits = Limits(max_rows, max_bytes, max_result_bytes, max_value_bytes, max_columns)
        self._hidden = sorted({path, os.path.realpath(path), os.path.dirname(path),
                               os.path.dirname(os.path.realpath(path))} - {"", "/"}, key=len, reverse=True)
        self._lock = threading.Lock()
        self._closed = False
        self._deadline = math.inf
        self._should_stop: Callable[[], bool] = _never
        self._stopped: str | None = None
        self._denied: str | None = None
        try:
            self._conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            self._configure()
        except sqlite3.Error as exc:
            self._conn.close()
            raise self._error(exc) from None

    def _configure(self) -> None:
        conn, limits = self._conn, self.limits
        if hasattr(conn, "enable_load_extension"):
            conn.enable_load_extension(False)
        for limit, value in ((sqlite3.SQLITE_LIMIT_ATTACHED, 0),
                             (sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes),
                             (sqlite3.SQLITE_LIMIT_SQL_LENGTH, limits.max_value_bytes),
                             (sqlite3.SQLITE_LIMIT_COLUMN, limits.max_columns),
                             (sqlite3.SQLITE_LIMIT_TRIGGER_DEPTH, 100),
                             (sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10_000),
                             (sqlite3.SQLITE_LIMIT_WORKER_THREADS, 0)):
            conn.setlimit(limit, value)
        # Python 3.12+ offers the defensive flag (no writes to shadow tables or sqlite_dbpage,
        # no writable_schema whatever the PRAGMA says); 3.11 has no setconfig.
        setconfig = getattr(conn, "setconfig", None)
        defensive = getattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE", None)
        if setconfig is not None and defensive is not None:
            setconfig(defensive, True)
        # trusted_schema stays ON (and the script cannot change it): a trigger keeping an fts5
        # index needs it, and it guards nothing here, since the schema's author is the script
        # itself and the authorizer judges trigger and view bodies like any statement.
        conn.execute("PRAGMA trusted_schema = ON")
        conn.execute("PRAGMA cell_size_check = ON")
        conn.execute("PRAGMA temp_store = MEMORY")
        # Reading the schema now turns a file that is no database into an error at open.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = max(2, limits.max_bytes // page_size)
        conn.execute(f"PRAGMA main.max_page_count = {pages}")
        # temp is in memory (temp_store): capped the same so TEMP tables cannot fill the host.
        conn.execute(f"PRAGMA temp.max_page_count = {pages}")
        conn.set_authorizer(self._authorize)
        conn.set_progress_handler(self._progress, PROGRESS_STEPS)

    # -- the public calls -------------------------------------------------------------------

    def query(self, sql: str, params: list[Any], *, deadline: float,
              should_stop: Callable[[], bool]) -> list[dict[str, Any]]:
        """The rows of one statement, each a dict keyed by column name."""
        return self._call(self._query, sql, params, deadline, should_stop)

    def exec(self, sql: str, params: list[Any], *, deadline: float,
             should_stop: Callable[[], bool]) -> dict[str, Any]:
        """Runs one statement to its end: {"success": True, "rowsAffected", "lastInsertId"}."""
        return self._call(self._exec, sql, params, deadline, should_stop)

    def close(self) -> None:
        """Closes the file (an open transaction is rolled back). Idempotent."""
        # A call under way on another thread ends at its next progress check.
        self._closed = True
        with self._lock:
            self._conn.close()

    # -- one call ---------------------------------------------------------------------------

    def _call(self, run: Callable[[sqlite3.Cursor], Any], sql: str, params: Sequence[Any],
              deadline: float, should_stop: Callable[[], bool]) -> Any:
        if self._closed:
            raise ModuleError("ERR_DATABASE_CLOSED", "the database is closed")
        if not isinstance(sql, str):
            raise ModuleError("ERR_INVALID_ARG_TYPE", "the SQL statement must be a string")
        if "\0" in sql:
            raise ModuleError("ERR_INVALID_ARG_VALUE", "the SQL statement must not contain NUL characters")
        bound = _bind(params)
        stopped = _stop_reason(deadline, should_stop)
        if stopped is not None:
            raise ModuleError("SQLITE_INTERRUPT", f"SQLITE_INTERRUPT: {stopped}")
        if not self._lock.acquire(timeout=max(0.0, min(deadline - time.monotonic(), threading.TIMEOUT_MAX))):
            raise ModuleError("SQLITE_BUSY", "SQLITE_BUSY: the database is in use by another call")
        try:
            if self._closed:
                raise ModuleError("ERR_DATABASE_CLOSED", "the database is closed")
            self._deadline, self._should_stop = deadline, should_stop
            self._stopped = self._denied = None
            cursor = self._conn.cursor()
            try:
                cursor.execute(sql, bound)
                return run(cursor)
            finally:
                cursor.close()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        except UnicodeEncodeError:
            raise _surrogate_error(sql, bound) from None
        finally:
            self._deadline, self._should_stop = math.inf, _never
            self._lock.release()

    def _query(self, cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
        if cursor.description is None:
            return []  # a statement without result columns (INSERT without RETURNING, DDL)
        names = [column[0] for column in cursor.description]
        if len(set(names)) != len(names):
            # A dict keeps one of two equal keys: the other value would vanish without a word.
            twice = next(name for index, name in enumerate(names) if name in names[:index])
            raise ModuleError("ERR_DATABASE_DUPLICATE_COLUMN",
                              f'the result has two columns named "{twice}": give each its own name with AS')
        rows = self._fetch(cursor, len(names))
        # map() builds the dicts in C: a comprehension costs a few µs more per 100 rows.
        return list(map(dict, map(zip, repeat(names), rows)))

    def _exec(self, cursor: sqlite3.Cursor) -> dict[str, Any]:
        # Rows a statement returns are stepped through (its work done) and dropped.
        for _ in cursor:
            pass
        return {"success": True, "rowsAffected": max(cursor.rowcount, 0),
                "lastInsertId": _integer(cursor.lastrowid or 0)}

    def _fetch(self, cursor: sqlite3.Cursor, width: int) -> list[tuple[Any, ...]]:
        """All rows, converted for JSON, fetched in batches that hold at most FETCH_MEMORY even if
        every value were as large as a value may be: a result over a ceiling is refused before
        much more than the ceiling (plus one batch) was built in host memory."""
        limits = self.limits
        batch = max(1, min(1024, FETCH_MEMORY // (width * limits.max_value_bytes)))
        rows: list[tuple[Any, ...]] = []
        size = 0
        while True:
            chunk = cursor.fetchmany(batch)
            if not chunk:
                return rows
            done = len(chunk) < batch  # SQLite had no more: no call just to hear that
            chunk, chunk_size = _convert(chunk)
            rows += chunk
            size += chunk_size
            if len(rows) > limits.max_rows:
                raise ModuleError("ERR_DATABASE_RESULT_TOO_LARGE",
                                  f"the result has more than {limits.max_rows} rows: "
                                  "narrow it with WHERE or LIMIT/OFFSET")
            if size > limits.max_result_bytes:
                raise ModuleError("ERR_DATABASE_RESULT_TOO_LARGE",
                                  f"the result holds more than {limits.max_result_bytes} bytes: "
                                  "narrow it with WHERE or LIMIT/OFFSET")
            if done:
                return rows

    # -- SQLite's callbacks (run on the calling thread, inside sqlite3_prepare / step) -------

    def _progress(self) -> int:
        if self._closed:
            self._stopped = "the database was closed"
            return 1
        stopped = _stop_reason(self._deadline, self._should_stop)
        if stopped is None:
            return 0
        self._stopped = stopped
        return 1

    def _authorize(self, action: int, arg1: str | None, arg2: str | None, _db: str | None,
                   _trigger: str | None) -> int:
        denied = _denial(action, arg1, arg2)
        if denied is None:
            return _OK
        self._denied = denied
        return _DENY

    # -- errors -----------------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error) -> ModuleError:
        name = getattr(exc, "sqlite_errorname", None)
        text = str(exc)
        if self._stopped is not None and (name == "SQLITE_INTERRUPT" or text == "interrupted"):
            return ModuleError("SQLITE_INTERRUPT", f"SQLITE_INTERRUPT: {self._stopped}")
        if self._denied is not None and name in ("SQLITE_AUTH", None, "SQLITE_ERROR"):
            return ModuleError("SQLITE_AUTH", f"SQLITE_AUTH: {self._denied}")
        if name is None and text.startswith("Could not decode to UTF-8"):
            # Python's own message quotes the text; the script gets what to do instead.
            return ModuleError("ERR_DATABASE_INVALID_TEXT",
                               "a TEXT value is not valid UTF-8: read it as a BLOB with CAST(... AS BLOB)")
        if isinstance(exc, sqlite3.ProgrammingError) and name is None:
            if text.startswith("You can only execute one statement"):
                return ModuleError("ERR_DATABASE_MULTIPLE_STATEMENTS",
                                   "one statement per call: the SQL holds more than one (none of it ran)")
            if text.startswith("Incorrect number of bindings"):
                counts = text.removeprefix("Incorrect number of bindings supplied. ")
                return ModuleError("SQLITE_RANGE", f"SQLITE_RANGE: {counts}")
        if name is None:
            name = "SQLITE_CANTOPEN" if text == "unable to open database file" else "SQLITE_ERROR"
        if name == "SQLITE_TOOBIG":
            text += f" (a value or statement is at most {self.limits.max_value_bytes} bytes)"
        for hidden in self._hidden:
            text = text.replace(hidden, "<database>")
        return ModuleError(name, f"{name}: {text}")


def _stop_reason(deadline: float, should_stop: Callable[[], bool]) -> str | None:
    if should_stop():
        return "the execution was stopped"
    if time.monotonic() >= deadline:
        return "the execution's time limit was reached"
    return None


def _denial(action: int, arg1: str | None, arg2: str | None) -> str | None:
    """Why a step of a statement being prepared is refused, or None."""
    if action in (sqlite3.SQLITE_READ, sqlite3.SQLITE_SELECT, sqlite3.SQLITE_INSERT,
                  sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE):
        if action == sqlite3.SQLITE_READ and arg1 is not None and arg1.lower() in DENIED_TABLES:
            return f"the table {arg1} is not available"
        return None
    if action == sqlite3.SQLITE_FUNCTION:
        if arg2 is not None and arg2.lower() in DENIED_FUNCTIONS:
            return f"the function {arg2}() is not available"
        return None
    if action == sqlite3.SQLITE_PRAGMA:
        return _pragma_denial((arg1 or "").lower(), arg2)
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        # VACUUM (plain or INTO a file) attaches its target: this is how it is refused too.
        return "ATTACH, DETACH and VACUUM are not available: a session has one database"
    if action == sqlite3.SQLITE_CREATE_VTABLE:
        if (arg2 or "").lower() not in VTABLE_MODULES:
            return f"the virtual table module {arg2} is not available (only {', '.join(sorted(VTABLE_MODULES))})"
        return None
    return None


def _pragma_denial(pragma: str, argument: str | None) -> str | None:
    if pragma in SETTABLE_PRAGMAS:
        return None
    if pragma in READ_PRAGMAS and (argument is None or pragma not in NO_ARGUMENT_PRAGMAS):
        return None
    if pragma in READ_PRAGMAS:
        return f"PRAGMA {pragma} can only be read"
    return f"PRAGMA {pragma} is not available"


def _bind(params: Sequence[Any]) -> Sequence[Any]:
    """The parameters as SQLite binds them: JSON's null, boolean, number and string."""
    if not isinstance(params, list | tuple):
        raise ModuleError("ERR_INVALID_ARG_TYPE", "the parameters must be an array")
    bound: list[Any] | None = None
    for index, value in enumerate(params):
        kind = type(value)
        if kind is str or kind is float or value is None:
            continue
        if kind is int and INT64_MIN <= value <= INT64_MAX:
            continue
        if bound is None:
            bound = list(params)
        bound[index] = _bind_one(index, value)
    return params if bound is None else bound


def _bind_one(index: int, value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        # A JavaScript number past 2^63 arrives as the integer its double spells: bound as
        # that double (what the script had), unless it is no double at all.
        as_float = float(value) if abs(value) < 2**1024 else math.inf
        if as_float == value:
            return as_float
        raise ModuleError("ERR_OUT_OF_RANGE", f"parameter {index + 1} is an integer SQLite cannot hold")
    kind = "an array" if isinstance(value, list | tuple) else "an object"
    raise ModuleError("ERR_INVALID_ARG_TYPE",
                      f"parameter {index + 1} must be null, a boolean, a number or a string, not {kind}")


def _surrogate_error(sql: str, params: Sequence[Any]) -> ModuleError:
    for index, value in enumerate(params):
        if isinstance(value, str) and not _encodes(value):
            return ModuleError("ERR_INVALID_ARG_VALUE",
                               f"parameter {index + 1} is not Unicode text (it holds a lone surrogate)")
    return ModuleError("ERR_INVALID_ARG_VALUE", "the SQL statement is not Unicode text (it holds a lone surrogate)")


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _convert(rows: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], int]:
    """The rows with every value JSON can carry, and their size (text in characters, a BLOB in
    bytes, any other value 8). Checked a column at a time: only a column that needs it is
    converted value by value."""
    columns = list(zip(*rows, strict=True))
    size = 0
    converted = False
    for index, column in enumerate(columns):
        plain = _plain_size(column)
        if plain is None:
            present = tuple(filter(_not_none, column))
            if len(present) < len(column):
                plain = _plain_size(present)
                if plain is not None:
                    plain += 8 * (len(column) - len(present))
        if plain is not None:
            size += plain
            continue
        size += sum(len(value) if isinstance(value, str | bytes) else 8 for value in column)
        columns[index] = tuple(map(_value, column))
        converted = True
    return (list(zip(*columns, strict=True)) if converted else rows), size


def _plain_size(column: Sequence[Any]) -> int | None:
    """The size of a column that JSON carries as it is (all text, or all numbers within
    ±(2^53 - 1)), else None.

    A Python step per value would cost more than SQLite took to make it, so the test is two
    C-speed built-ins that fail on anything else: join() takes only text; abs() takes only
    numbers, and a sum of magnitudes within the safe range bounds every one of them (a larger
    sum only sends the column the slow way, which is exact)."""
    try:
        return len("".join(column))
    except TypeError:
        pass
    try:
        magnitude = sum(map(abs, column))
    except TypeError:  # NULLs, BLOBs, or kinds mixed
        return None
    return 8 * len(column) if magnitude <= MAX_SAFE_INTEGER else None  # also False for inf


def _value(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return {"$blob": base64.b64encode(value).decode("ascii")}
    if isinstance(value, int):
        return _integer(value)
    if isinstance(value, float):
        return _real(value)
    return value


def _integer(value: int) -> Any:
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return value
    return {"$bigint": str(value)}


def _real(value: float) -> Any:
    # A float beyond 2^53 is an ordinary double: only the infinities need a tag (SQLite turns
    # NaN into NULL).
    if math.isinf(value):
        return {"$number": "Infinity" if value > 0 else "-Infinity"}
    return value
