"""The escape corpus of the `database` module: every way out of the session's own SQLite file
that a script could try, each refused with its exact code and message, on a real file, with a
real second database beside it standing for the daemon's own."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.modules.database import SessionDatabase
from supervisor.modules.errors import ModuleError

ONE_DB = "SQLITE_AUTH: ATTACH, DETACH and VACUUM are not available: a session has one database"
FOREVER = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)"
TIMED_OUT = "SQLITE_INTERRUPT: the execution's time limit was reached"
TOO_BIG = "SQLITE_TOOBIG: string or blob too big (a value or statement is at most 1048576 bytes)"
# A statement that must be stopped gets this long; the others never come near it.
LIMIT = 0.3


def _never() -> bool:
    return False


@pytest.fixture()
def daemon_db(tmp_path: Path) -> Path:
    """A database the script must never reach, with a secret in it."""
    path = tmp_path / "daemon" / "vm-system.db"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE secrets(value TEXT)")
    conn.execute("INSERT INTO secrets VALUES ('the daemon''s secret')")
    conn.commit()
    conn.close()
    return path


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[SessionDatabase]:
    database = SessionDatabase(_session_path(tmp_path))
    run(database, "exec", "CREATE TABLE t(id INTEGER PRIMARY KEY, a, b)")
    run(database, "exec", f"INSERT INTO t(a, b) {FOREVER} SELECT x, 'row ' || x FROM c LIMIT 100")
    run(database, "exec", "CREATE TABLE loop(x)")
    yield database
    database.close()


def _session_path(tmp_path: Path) -> str:
    folder = tmp_path / "session"
    folder.mkdir(exist_ok=True)
    return str(folder / "db.sqlite")


def run(db: SessionDatabase, kind: str, sql: str, params: list[object] | None = None, limit: float = 30.0) -> object:
    call = db.query if kind == "query" else db.exec
    return call(sql, params or [], deadline=time.monotonic() + limit, should_stop=_never)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# (id, setup statements, query|exec, the attempt, code, message). {daemon} is the path of the
# daemon's database, {dir} the session's folder.
ESCAPES: list[tuple[str, list[str], str, str, str, str]] = [
    ("attach-daemon-db", [], "exec", "ATTACH '{daemon}' AS d", "SQLITE_AUTH", ONE_DB),
    ("attach-daemon-db-in-query", [], "query", "ATTACH DATABASE '{daemon}' AS d", "SQLITE_AUTH", ONE_DB),
    ("attach-memory", [], "exec", "ATTACH ':memory:' AS m", "SQLITE_AUTH", ONE_DB),
    ("attach-empty-name", [], "exec", "ATTACH '' AS scratch", "SQLITE_AUTH", ONE_DB),
    ("attach-file-uri", [], "exec", "ATTACH 'file:{daemon}?mode=ro&immutable=1' AS d", "SQLITE_AUTH", ONE_DB),
    ("attach-new-file", [], "exec", "ATTACH '{dir}/other.db' AS o", "SQLITE_AUTH", ONE_DB),
    ("detach-main", [], "exec", "DETACH DATABASE main", "SQLITE_AUTH", ONE_DB),
    ("vacuum-into-file", [], "exec", "VACUUM INTO '{dir}/copy.db'", "SQLITE_AUTH", ONE_DB),
    ("vacuum-into-daemon-db", [], "exec", "VACUUM INTO '{daemon}'", "SQLITE_AUTH", ONE_DB),
    ("vacuum", [], "exec", "VACUUM", "SQLITE_AUTH", ONE_DB),
    ("load-extension", [], "query", "SELECT load_extension('/usr/lib/x86_64-linux-gnu/libc.so.6')",
     "SQLITE_AUTH", "SQLITE_AUTH: the function load_extension() is not available"),
    # In a view, SQLite's own direct-only rule refuses these before the authorizer is asked.
    ("load-extension-in-view", ["CREATE VIEW v AS SELECT load_extension('x') AS y"], "query", "SELECT * FROM v",
     "SQLITE_ERROR", "SQLITE_ERROR: unsafe use of load_extension()"),
    ("dbstat-in-view", ["CREATE VIEW v AS SELECT * FROM dbstat"], "query", "SELECT * FROM v",
     "SQLITE_ERROR", 'SQLITE_ERROR: unsafe use of virtual table "dbstat"'),
    ("fts3-tokenizer-in-default", ["CREATE TABLE d(x DEFAULT (fts3_tokenizer('simple')))"], "exec",
     "INSERT INTO d DEFAULT VALUES", "SQLITE_ERROR", "SQLITE_ERROR: unsafe use of fts3_tokenizer()"),
    ("fts3-tokenizer-pointer-leak", [], "query", "SELECT fts3_tokenizer('simple')",
     "SQLITE_AUTH", "SQLITE_AUTH: the function fts3_tokenizer() is not available"),
    ("fts3-tokenizer-install", [], "query", "SELECT fts3_tokenizer('evil', x'4141414141414141')",
     "SQLITE_AUTH", "SQLITE_AUTH: the function fts3_tokenizer() is not available"),
    ("fts3-tokenizer-in-trigger",
     ["CREATE TRIGGER tr AFTER INSERT ON loop BEGIN SELECT fts3_tokenizer('simple'); END"], "exec",
     "INSERT INTO loop VALUES (1)", "SQLITE_AUTH", "SQLITE_AUTH: the function fts3_tokenizer() is not available"),
    ("writable-schema-on", [], "exec", "PRAGMA writable_schema = ON",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA writable_schema is not available"),
    ("writable-schema-function", [], "query", "SELECT * FROM pragma_writable_schema",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA writable_schema is not available"),
    ("schema-corruption", [], "exec", "UPDATE sqlite_master SET sql = 'CREATE TABLE t(' WHERE name = 't'",
     "SQLITE_ERROR", "SQLITE_ERROR: table sqlite_master may not be modified"),
    ("schema-insert", [], "exec", "INSERT INTO sqlite_schema VALUES ('table', 'x', 'x', 2, 'CREATE TABLE x(y)')",
     "SQLITE_ERROR", "SQLITE_ERROR: table sqlite_master may not be modified"),
    ("temp-schema-delete", [], "exec", "DELETE FROM sqlite_temp_master",
     "SQLITE_ERROR", "SQLITE_ERROR: table sqlite_temp_master may not be modified"),
    ("journal-mode-off", [], "exec", "PRAGMA journal_mode = OFF",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA journal_mode is not available"),
    ("journal-mode-wal", [], "query", "PRAGMA main.journal_mode = WAL",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA journal_mode is not available"),
    ("max-page-count-raise", [], "exec", "PRAGMA max_page_count = 2147483646",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA max_page_count can only be read"),
    ("temp-max-page-count-raise", [], "exec", "PRAGMA temp.max_page_count = 2147483646",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA max_page_count can only be read"),
    # A pragma's table-valued function takes a schema, never a value to set.
    ("max-page-count-function", [], "query", "SELECT * FROM pragma_max_page_count(2147483646)",
     "SQLITE_ERROR", "SQLITE_ERROR: unknown database '2147483646'"),
    ("page-size", [], "exec", "PRAGMA page_size = 65536",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA page_size can only be read"),
    ("temp-store-file", [], "exec", "PRAGMA temp_store = FILE",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA temp_store is not available"),
    ("temp-store-directory", [], "exec", "PRAGMA temp_store_directory = '/tmp'",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA temp_store_directory is not available"),
    ("mmap-size", [], "exec", "PRAGMA mmap_size = 1099511627776",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA mmap_size is not available"),
    ("cache-size", [], "exec", "PRAGMA cache_size = -100000000",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA cache_size is not available"),
    ("trusted-schema", [], "exec", "PRAGMA trusted_schema = ON",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA trusted_schema is not available"),
    ("cell-size-check", [], "exec", "PRAGMA cell_size_check = OFF",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA cell_size_check is not available"),
    ("schema-version", [], "exec", "PRAGMA schema_version = 1",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA schema_version can only be read"),
    ("database-list-reveals-path", [], "query", "PRAGMA database_list",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA database_list is not available"),
    ("database-list-function", [], "query", "SELECT file FROM pragma_database_list",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA database_list is not available"),
    ("soft-heap-limit", [], "exec", "PRAGMA soft_heap_limit = 1",
     "SQLITE_AUTH", "SQLITE_AUTH: PRAGMA soft_heap_limit is not available"),
    ("sqlite-dbpage", [], "query", "SELECT * FROM sqlite_dbpage",
     "SQLITE_ERROR", "SQLITE_ERROR: no such table: sqlite_dbpage"),
    ("dbstat", [], "query", "SELECT * FROM dbstat", "SQLITE_AUTH", "SQLITE_AUTH: the table dbstat is not available"),
    ("sqlite-stmt", [], "query", "SELECT sql FROM sqlite_stmt",
     "SQLITE_AUTH", "SQLITE_AUTH: the table sqlite_stmt is not available"),
    ("fts3-module", [], "exec", "CREATE VIRTUAL TABLE f USING fts3(body)", "SQLITE_AUTH",
     "SQLITE_AUTH: the virtual table module fts3 is not available (only fts5, rtree, rtree_i32)"),
    ("fts4-module", [], "exec", "CREATE VIRTUAL TABLE f USING fts4(body, tokenize=evil)", "SQLITE_AUTH",
     "SQLITE_AUTH: the virtual table module fts4 is not available (only fts5, rtree, rtree_i32)"),
    ("dbstat-module", [], "exec", "CREATE VIRTUAL TABLE temp.s USING dbstat(main)", "SQLITE_AUTH",
     "SQLITE_AUTH: the virtual table module dbstat is not available (only fts5, rtree, rtree_i32)"),
    ("two-statements", [], "exec", "INSERT INTO loop VALUES (1); INSERT INTO loop VALUES (2)",
     "ERR_DATABASE_MULTIPLE_STATEMENTS", "one statement per call: the SQL holds more than one (none of it ran)"),
    ("stacked-drop-table", [], "query", "SELECT * FROM t WHERE id = 1; DROP TABLE t",
     "ERR_DATABASE_MULTIPLE_STATEMENTS", "one statement per call: the SQL holds more than one (none of it ran)"),
    ("stacked-after-comment", [], "exec", "SELECT 1 -- comment\n; DROP TABLE t",
     "ERR_DATABASE_MULTIPLE_STATEMENTS", "one statement per call: the SQL holds more than one (none of it ran)"),
    ("stacked-attach", [], "exec", "SELECT 1; ATTACH '{daemon}' AS d",
     "ERR_DATABASE_MULTIPLE_STATEMENTS", "one statement per call: the SQL holds more than one (none of it ran)"),
    ("nul-truncation", [], "exec", "SELECT 1\0; DROP TABLE t",
     "ERR_INVALID_ARG_VALUE", "the SQL statement must not contain NUL characters"),
    ("recursive-cte-runaway", [], "query", f"{FOREVER} SELECT count(*) FROM c", "SQLITE_INTERRUPT", TIMED_OUT),
    ("huge-cross-join", [], "query", "SELECT count(*) FROM t AS a, t AS b, t AS c, t AS d, t AS e, t AS f",
     "SQLITE_INTERRUPT", TIMED_OUT),
    ("randomblob-bomb", [], "query", "SELECT length(randomblob(1000000000))", "SQLITE_TOOBIG", TOO_BIG),
    ("randomblob-loop", [], "query",
     "WITH RECURSIVE c(x) AS (SELECT randomblob(100000) UNION ALL SELECT randomblob(100000) FROM c) "
     "SELECT count(*) FROM c", "SQLITE_INTERRUPT", TIMED_OUT),
    ("group-concat-bomb", [], "query",
     f"SELECT length(group_concat(hex(randomblob(1000)))) FROM ({FOREVER} SELECT x FROM c LIMIT 1000)",
     "SQLITE_TOOBIG", TOO_BIG),
    ("zeroblob-size", [], "query", "SELECT zeroblob(2000000000)", "SQLITE_TOOBIG", TOO_BIG),
    ("replace-bomb", [], "query", "SELECT length(replace(hex(zeroblob(500000)), '0', 'aaaaaaaa'))",
     "SQLITE_TOOBIG", TOO_BIG),
    ("trigger-forever", ["CREATE TRIGGER tr AFTER INSERT ON loop BEGIN "
                         f"SELECT count(*) FROM ({FOREVER} SELECT x FROM c); END"],
     "exec", "INSERT INTO loop VALUES (1)", "SQLITE_INTERRUPT", TIMED_OUT),
    ("recursive-trigger", ["PRAGMA recursive_triggers = ON",
                           "CREATE TRIGGER tr AFTER INSERT ON loop BEGIN INSERT INTO loop VALUES (new.x + 1); END"],
     "exec", "INSERT INTO loop VALUES (1)", "SQLITE_ERROR", "SQLITE_ERROR: too many levels of trigger recursion"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("setup", "kind", "attempt", "code", "message"),
                         [case[1:] for case in ESCAPES], ids=[case[0] for case in ESCAPES])
def test_an_escape_is_refused_with_its_code(db: SessionDatabase, daemon_db: Path, tmp_path: Path, setup: list[str],
                                            kind: str, attempt: str, code: str, message: str) -> None:
    for statement in setup:
        run(db, "exec", statement)
    before = _digest(daemon_db)
    folder = tmp_path / "session"
    sql = attempt.replace("{daemon}", str(daemon_db)).replace("{dir}", str(folder))
    started = time.monotonic()
    with pytest.raises(ModuleError) as caught:
        run(db, kind, sql, limit=LIMIT)
    elapsed = time.monotonic() - started
    assert (caught.value.code, caught.value.message) == (code, message)
    assert str(tmp_path) not in caught.value.message
    if code == "SQLITE_INTERRUPT":
        assert elapsed >= LIMIT
        assert elapsed < LIMIT + 10  # generous: a hang guard only, far above the few ms it takes
    # Nothing of it happened: no other file, the daemon's database untouched, the session's
    # tables all there, and the connection still answers.
    assert sorted(p.name for p in folder.iterdir()) == ["db.sqlite"]
    assert _digest(daemon_db) == before
    assert run(db, "query", "SELECT count(*) AS n FROM t") == [{"n": 100}]
    assert run(db, "query", "SELECT name FROM sqlite_master WHERE name = 't'") == [{"name": "t"}]


INTERPOLATIONS = [
    "1; DROP TABLE t",
    "x'); DROP TABLE t; --",
    "' OR '1'='1",
    "\" OR 1=1 --",
    "'; ATTACH '/etc/passwd' AS p; --",
    "?",
    ":a $b @c",
]


@pytest.mark.parametrize("value", INTERPOLATIONS)
def test_a_parameter_is_bound_never_read_as_sql(db: SessionDatabase, value: str) -> None:
    assert run(db, "query", "SELECT count(*) AS n FROM t WHERE b = ?", [value]) == [{"n": 0}]
    assert run(db, "exec", "INSERT INTO loop VALUES (?)", [value])["rowsAffected"] == 1
    assert run(db, "query", "SELECT x FROM loop") == [{"x": value}]
    assert run(db, "query", "SELECT count(*) AS n FROM t") == [{"n": 100}]


def test_the_escape_corpus_is_large_enough() -> None:
    assert len(ESCAPES) >= 15
    assert len({case[0] for case in ESCAPES}) == len(ESCAPES)
