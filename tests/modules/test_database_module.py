"""The `database` module's host half on real SQLite files: what a script's calls return, how
values cross, the ceilings, the deadline and stop, persistence, and errors that never name
the file."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.modules.database import SessionDatabase
from supervisor.modules.errors import ModuleError

FOREVER = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)"


def _never() -> bool:
    return False


def query(db: SessionDatabase, sql: str, *params: Any, limit: float = 30.0,
          should_stop: Callable[[], bool] = _never) -> list[dict[str, Any]]:
    return db.query(sql, list(params), deadline=time.monotonic() + limit, should_stop=should_stop)


def execute(db: SessionDatabase, sql: str, *params: Any, limit: float = 30.0,
            should_stop: Callable[[], bool] = _never) -> dict[str, Any]:
    return db.exec(sql, list(params), deadline=time.monotonic() + limit, should_stop=should_stop)


def refused(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(ModuleError) as caught:
        call()
    return caught.value.code, caught.value.message


@pytest.fixture()
def path(tmp_path: Path) -> str:
    return str(tmp_path / "session.sqlite")


@pytest.fixture()
def db(path: str) -> Iterator[SessionDatabase]:
    database = SessionDatabase(path)
    yield database
    database.close()


# -- the calls -------------------------------------------------------------------------------

def test_exec_reports_rows_affected_and_the_last_insert_id(db: SessionDatabase) -> None:
    assert execute(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)") == {
        "success": True, "rowsAffected": 0, "lastInsertId": 0}
    assert execute(db, "INSERT INTO t(name) VALUES (?)", "ada") == {
        "success": True, "rowsAffected": 1, "lastInsertId": 1}
    assert execute(db, "INSERT INTO t(name) VALUES (?), (?)", "bob", "cy")["rowsAffected"] == 2
    assert execute(db, "UPDATE t SET name = upper(name) WHERE id > ?", 1) == {
        "success": True, "rowsAffected": 2, "lastInsertId": 3}
    assert query(db, "SELECT id, name FROM t ORDER BY id") == [
        {"id": 1, "name": "ada"}, {"id": 2, "name": "BOB"}, {"id": 3, "name": "CY"}]


def test_query_of_a_statement_without_columns_runs_it_and_returns_no_rows(db: SessionDatabase) -> None:
    assert query(db, "CREATE TABLE t(x)") == []
    assert query(db, "INSERT INTO t VALUES (1)") == []
    assert query(db, "INSERT INTO t VALUES (2) RETURNING x * 10 AS ten") == [{"ten": 20}]
    assert query(db, "SELECT x FROM t ORDER BY x") == [{"x": 1}, {"x": 2}]
    assert query(db, "SELECT x FROM t WHERE x > 5") == []


def test_exec_of_a_select_steps_through_it_and_drops_the_rows(db: SessionDatabase) -> None:
    execute(db, "CREATE TABLE t(x)")
    assert execute(db, "INSERT INTO t VALUES (1) RETURNING x") == {
        "success": True, "rowsAffected": 1, "lastInsertId": 1}
    assert execute(db, f"{FOREVER} SELECT x FROM c LIMIT 5000") == {"success": True, "rowsAffected": 0,
                                                                    "lastInsertId": 1}


def test_ddl_triggers_views_ctes_transactions_temp_tables_fts5_and_rtree_work(db: SessionDatabase) -> None:
    execute(db, "CREATE TABLE doc(id INTEGER PRIMARY KEY, body TEXT)")
    execute(db, "CREATE VIRTUAL TABLE doc_fts USING fts5(body, content='doc', content_rowid='id')")
    execute(db, "CREATE TRIGGER doc_ai AFTER INSERT ON doc BEGIN "
                "INSERT INTO doc_fts(rowid, body) VALUES (new.id, new.body); END")
    execute(db, "CREATE VIEW long_doc AS SELECT id FROM doc WHERE length(body) > 10")
    execute(db, "BEGIN")
    execute(db, "INSERT INTO doc(body) VALUES (?)", "the quick brown fox")
    execute(db, "SAVEPOINT s")
    execute(db, "INSERT INTO doc(body) VALUES (?)", "lazy dog")
    execute(db, "ROLLBACK TO s")
    execute(db, "COMMIT")
    assert query(db, "SELECT rowid FROM doc_fts WHERE doc_fts MATCH ?", "quick") == [{"rowid": 1}]
    assert query(db, "SELECT id FROM long_doc") == [{"id": 1}]
    execute(db, "CREATE VIRTUAL TABLE box USING rtree(id, x0, x1)")
    execute(db, "INSERT INTO box VALUES (1, 0, 10)")
    assert query(db, "SELECT id FROM box WHERE x0 <= 5 AND x1 >= 5") == [{"id": 1}]
    execute(db, "CREATE TEMP TABLE scratch(v)")
    execute(db, "INSERT INTO scratch VALUES (1)")
    assert query(db, f"{FOREVER} SELECT sum(x) AS s FROM (SELECT x FROM c LIMIT 10)") == [{"s": 55}]
    assert query(db, "PRAGMA table_info(doc)")[1]["name"] == "body"
    assert query(db, "SELECT name FROM pragma_index_list('doc')") == []
    execute(db, "PRAGMA foreign_keys = ON")
    assert query(db, "PRAGMA foreign_keys") == [{"foreign_keys": 1}]
    execute(db, "PRAGMA user_version = 7")
    assert query(db, "PRAGMA user_version") == [{"user_version": 7}]


def test_data_outlives_calls_and_a_close_and_reopen(path: str) -> None:
    first = SessionDatabase(path)
    execute(first, "CREATE TABLE t(x)")
    execute(first, "INSERT INTO t VALUES (?)", "kept")
    assert query(first, "SELECT x FROM t") == [{"x": "kept"}]
    first.close()
    second = SessionDatabase(path)
    assert query(second, "SELECT x FROM t") == [{"x": "kept"}]
    second.close()


def test_a_transaction_left_open_at_close_is_rolled_back(path: str) -> None:
    first = SessionDatabase(path)
    execute(first, "CREATE TABLE t(x)")
    execute(first, "BEGIN")
    execute(first, "INSERT INTO t VALUES (1)")
    first.close()
    second = SessionDatabase(path)
    assert query(second, "SELECT count(*) AS n FROM t") == [{"n": 0}]
    second.close()


def test_close_is_idempotent_and_later_calls_fail_clearly(db: SessionDatabase) -> None:
    db.close()
    db.close()
    closed = ("ERR_DATABASE_CLOSED", "the database is closed")
    assert refused(lambda: query(db, "SELECT 1")) == closed
    assert refused(lambda: execute(db, "SELECT 1")) == closed


# -- values in -------------------------------------------------------------------------------

def test_parameters_bind_null_booleans_numbers_and_strings(db: SessionDatabase) -> None:
    row = query(db, "SELECT ? AS n, ? AS t, ? AS f, ? AS i, ? AS r, ? AS s, typeof(?) AS big",
                None, True, False, -(2**63), 0.5, "é\0x", 2**70)
    assert row == [{"n": None, "t": 1, "f": 0, "i": {"$bigint": str(-(2**63))}, "r": 0.5, "s": "é\0x", "big": "real"}]
    # A JavaScript number past 2^63 is the double it spells.
    assert query(db, "SELECT ? AS big", 2**70) == [{"big": float(2**70)}]


@pytest.mark.parametrize(("params", "code", "message"), [
    ([[1, 2]], "ERR_INVALID_ARG_TYPE", "parameter 1 must be null, a boolean, a number or a string, not an array"),
    ([1, {"a": 1}], "ERR_INVALID_ARG_TYPE",
     "parameter 2 must be null, a boolean, a number or a string, not an object"),
    ([2**64 + 1], "ERR_OUT_OF_RANGE", "parameter 1 is an integer SQLite cannot hold"),
    (["ok", "\ud800"], "ERR_INVALID_ARG_VALUE", "parameter 2 is not Unicode text (it holds a lone surrogate)"),
    ([1, 2], "SQLITE_RANGE", "SQLITE_RANGE: The current statement uses 1, and there are 2 supplied."),
    ([], "SQLITE_RANGE", "SQLITE_RANGE: The current statement uses 1, and there are 0 supplied."),
])
def test_a_parameter_json_cannot_mean_is_refused(db: SessionDatabase, params: list[Any], code: str,
                                                 message: str) -> None:
    sql = "SELECT ? AS a" if len(params) != 2 or code == "SQLITE_RANGE" else "SELECT ? AS a, ? AS b"
    assert refused(lambda: db.query(sql, params, deadline=time.monotonic() + 30, should_stop=_never)) == (code, message)


@pytest.mark.parametrize(("sql", "params", "code", "message"), [
    (42, [], "ERR_INVALID_ARG_TYPE", "the SQL statement must be a string"),
    ("SELECT '\ud800'", [], "ERR_INVALID_ARG_VALUE",
     "the SQL statement is not Unicode text (it holds a lone surrogate)"),
    ("SELECT ?", {"a": 1}, "ERR_INVALID_ARG_TYPE", "the parameters must be an array"),
])
def test_a_statement_or_parameters_of_the_wrong_kind_are_refused(db: SessionDatabase, sql: Any, params: Any,
                                                                 code: str, message: str) -> None:
    assert refused(lambda: db.exec(sql, params, deadline=time.monotonic() + 30, should_stop=_never)) == (code, message)


# -- values out ------------------------------------------------------------------------------

def test_values_json_cannot_hold_leave_as_tagged_objects(db: SessionDatabase) -> None:
    rows = query(db, "SELECT x'00ff10' AS b, 9223372036854775807 AS big, -9007199254740992 AS low, "
                     "9007199254740991 AS safe, 1e999 AS inf, -1e999 AS ninf, 1e300 AS large, "
                     "0.0 / 0 AS nan, NULL AS empty, 'text' AS t")
    assert rows == [{"b": {"$blob": "AP8Q"}, "big": {"$bigint": "9223372036854775807"},
                     "low": {"$bigint": "-9007199254740992"}, "safe": 9007199254740991,
                     "inf": {"$number": "Infinity"}, "ninf": {"$number": "-Infinity"}, "large": 1e300,
                     "nan": None, "empty": None, "t": "text"}]


def test_columns_of_mixed_kinds_and_nulls_convert_value_by_value(db: SessionDatabase) -> None:
    execute(db, "CREATE TABLE t(v)")
    for value in (1, None, "two", 2**62, 3.5, "x'01'"):
        execute(db, "INSERT INTO t VALUES (?)", value)
    execute(db, "INSERT INTO t VALUES (x'01')")
    assert [row["v"] for row in query(db, "SELECT v FROM t ORDER BY rowid")] == [
        1, None, "two", {"$bigint": str(2**62)}, 3.5, "x'01'", {"$blob": "AQ=="}]
    assert query(db, "SELECT 2 AS a UNION ALL SELECT 2.5 UNION ALL SELECT 9007199254740993") == [
        {"a": 2}, {"a": 2.5}, {"a": {"$bigint": "9007199254740993"}}]


def test_last_insert_id_beyond_the_safe_integers_is_tagged(db: SessionDatabase) -> None:
    execute(db, "CREATE TABLE t(id INTEGER PRIMARY KEY)")
    assert execute(db, "INSERT INTO t VALUES (?)", 2**60)["lastInsertId"] == {"$bigint": str(2**60)}


def test_repeated_column_names_are_an_error_not_a_lost_value(db: SessionDatabase) -> None:
    execute(db, "CREATE TABLE a(id)")
    execute(db, "CREATE TABLE b(id)")
    message = 'the result has two columns named "{}": give each its own name with AS'
    assert refused(lambda: query(db, "SELECT 1 AS a, 2 AS a")) == ("ERR_DATABASE_DUPLICATE_COLUMN",
                                                                   message.format("a"))
    assert refused(lambda: query(db, "SELECT * FROM a JOIN b")) == ("ERR_DATABASE_DUPLICATE_COLUMN",
                                                                    message.format("id"))
    assert query(db, "SELECT a.id AS a_id, b.id AS b_id FROM a JOIN b") == []


def test_text_that_is_not_utf8_is_an_error_that_says_how_to_read_it(db: SessionDatabase) -> None:
    execute(db, "CREATE TABLE t(v)")
    execute(db, "INSERT INTO t VALUES (CAST(x'c3ff' AS TEXT))")
    assert refused(lambda: query(db, "SELECT v FROM t")) == (
        "ERR_DATABASE_INVALID_TEXT", "a TEXT value is not valid UTF-8: read it as a BLOB with CAST(... AS BLOB)")
    assert query(db, "SELECT CAST(v AS BLOB) AS v FROM t") == [{"v": {"$blob": "w/8="}}]


# -- ceilings --------------------------------------------------------------------------------

def test_a_result_over_max_rows_is_an_error_not_a_truncation(path: str) -> None:
    db = SessionDatabase(path, max_rows=50)
    assert len(query(db, f"{FOREVER} SELECT x FROM c LIMIT 50")) == 50
    assert refused(lambda: query(db, f"{FOREVER} SELECT x FROM c LIMIT 51")) == (
        "ERR_DATABASE_RESULT_TOO_LARGE", "the result has more than 50 rows: narrow it with WHERE or LIMIT/OFFSET")
    # Unbounded: refused at the ceiling, not at the deadline.
    assert refused(lambda: query(db, f"{FOREVER} SELECT x FROM c")) == (
        "ERR_DATABASE_RESULT_TOO_LARGE", "the result has more than 50 rows: narrow it with WHERE or LIMIT/OFFSET")
    db.close()


def test_a_result_over_max_result_bytes_is_an_error(path: str) -> None:
    db = SessionDatabase(path, max_result_bytes=100_000, max_value_bytes=60_000)
    assert len(query(db, f"{FOREVER} SELECT zeroblob(40000) AS b FROM c LIMIT 2")) == 2
    too_large = ("ERR_DATABASE_RESULT_TOO_LARGE",
                 "the result holds more than 100000 bytes: narrow it with WHERE or LIMIT/OFFSET")
    assert refused(lambda: query(db, f"{FOREVER} SELECT zeroblob(40000) AS b FROM c LIMIT 3")) == too_large
    assert refused(lambda: query(db, f"{FOREVER} SELECT printf('%.50000c', 'x') AS t FROM c")) == too_large
    assert refused(lambda: query(db, "SELECT zeroblob(60001)")) == (
        "SQLITE_TOOBIG", "SQLITE_TOOBIG: string or blob too big (a value or statement is at most 60000 bytes)")
    db.close()


def test_a_parameter_over_the_value_ceiling_is_refused(path: str) -> None:
    db = SessionDatabase(path, max_value_bytes=1000)
    assert query(db, "SELECT length(?) AS n", "x" * 1000) == [{"n": 1000}]
    assert refused(lambda: query(db, "SELECT length(?) AS n", "x" * 1001)) == (
        "SQLITE_TOOBIG", "SQLITE_TOOBIG: string or blob too big (a value or statement is at most 1000 bytes)")
    db.close()


def test_the_file_stops_at_max_bytes_with_the_data_before_intact(path: str) -> None:
    cap = 256 * 1024
    db = SessionDatabase(path, max_bytes=cap)
    execute(db, "CREATE TABLE t(n INTEGER, b BLOB)")
    inserted = 0
    with pytest.raises(ModuleError) as caught:
        for n in range(1000):
            execute(db, "INSERT INTO t VALUES (?, randomblob(10000))", n)
            inserted += 1
    assert (caught.value.code, caught.value.message) == ("SQLITE_FULL", "SQLITE_FULL: database or disk is full")
    assert inserted > 10
    assert query(db, "SELECT count(*) AS n, max(n) AS last FROM t") == [{"n": inserted, "last": inserted - 1}]
    assert os.path.getsize(path) <= cap + 2 * 4096
    assert query(db, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]
    # Room made is room to use again.
    execute(db, "DELETE FROM t WHERE n < 5")
    execute(db, "INSERT INTO t VALUES (-1, randomblob(10000))")
    db.close()


def test_temp_tables_in_memory_have_the_same_cap(path: str) -> None:
    db = SessionDatabase(path, max_bytes=256 * 1024)
    execute(db, "CREATE TEMP TABLE t(b)")
    assert refused(lambda: execute(db, f"INSERT INTO t SELECT randomblob(10000) FROM ({FOREVER} SELECT x FROM c)")) \
        == ("SQLITE_FULL", "SQLITE_FULL: database or disk is full")
    assert query(db, "SELECT count(*) AS n FROM t") == [{"n": 0}]
    db.close()


# -- deadline and stop -----------------------------------------------------------------------

def test_a_runaway_statement_ends_at_the_deadline_and_the_connection_stays_usable(db: SessionDatabase) -> None:
    started = time.monotonic()
    assert refused(lambda: query(db, f"{FOREVER} SELECT count(*) FROM c", limit=0.2)) == (
        "SQLITE_INTERRUPT", "SQLITE_INTERRUPT: the execution's time limit was reached")
    elapsed = time.monotonic() - started
    assert elapsed >= 0.2
    assert elapsed < 10  # generous: a hang guard only; the measured overshoot is a few ms
    assert query(db, "SELECT 1 AS one") == [{"one": 1}]


def test_a_stopped_execution_ends_the_statement_it_is_in(db: SessionDatabase) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    try:
        assert refused(lambda: query(db, f"{FOREVER} SELECT count(*) FROM c", should_stop=stop.is_set)) == (
            "SQLITE_INTERRUPT", "SQLITE_INTERRUPT: the execution was stopped")
    finally:
        timer.cancel()
    assert query(db, "SELECT 1 AS one") == [{"one": 1}]


def test_a_call_after_the_deadline_or_stop_runs_nothing(db: SessionDatabase) -> None:
    execute(db, "CREATE TABLE t(x)")
    assert refused(lambda: db.exec("INSERT INTO t VALUES (1)", [], deadline=time.monotonic() - 1,
                                   should_stop=_never)) == (
        "SQLITE_INTERRUPT", "SQLITE_INTERRUPT: the execution's time limit was reached")
    assert refused(lambda: execute(db, "INSERT INTO t VALUES (1)", should_stop=lambda: True)) == (
        "SQLITE_INTERRUPT", "SQLITE_INTERRUPT: the execution was stopped")
    assert query(db, "SELECT count(*) AS n FROM t") == [{"n": 0}]


def test_an_interrupted_write_leaves_the_data_before_it(db: SessionDatabase) -> None:
    execute(db, "CREATE TABLE t(x)")
    execute(db, "INSERT INTO t VALUES (1)")
    assert refused(lambda: execute(db, f"INSERT INTO t {FOREVER} SELECT x FROM c", limit=0.2))[0] == "SQLITE_INTERRUPT"
    assert query(db, "SELECT x FROM t") == [{"x": 1}]


def test_close_from_another_thread_ends_a_running_statement(db: SessionDatabase) -> None:
    outcome: list[tuple[str, str]] = []

    def runaway() -> None:
        outcome.append(refused(lambda: query(db, f"{FOREVER} SELECT count(*) FROM c")))

    worker = threading.Thread(target=runaway)
    worker.start()
    time.sleep(0.2)
    db.close()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert outcome == [("SQLITE_INTERRUPT", "SQLITE_INTERRUPT: the database was closed")]


# -- errors never name the file --------------------------------------------------------------

def test_sqlite_errors_keep_their_code_and_message(db: SessionDatabase) -> None:
    assert refused(lambda: query(db, "SELECT * FROM nowhere")) == (
        "SQLITE_ERROR", "SQLITE_ERROR: no such table: nowhere")
    assert refused(lambda: query(db, "SELEC 1")) == ("SQLITE_ERROR", 'SQLITE_ERROR: near "SELEC": syntax error')
    execute(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v UNIQUE)")
    execute(db, "INSERT INTO t(v) VALUES (1)")
    assert refused(lambda: execute(db, "INSERT INTO t(v) VALUES (1)")) == (
        "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_UNIQUE: UNIQUE constraint failed: t.v")


def test_a_file_that_is_no_database_fails_to_open_without_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "secret-folder" / "garbage.db"
    path.parent.mkdir()
    path.write_bytes(b"this is not a database" * 100)
    assert refused(lambda: SessionDatabase(str(path))) == ("SQLITE_NOTADB", "SQLITE_NOTADB: file is not a database")


def test_a_file_that_cannot_be_opened_fails_without_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "missing-folder" / "db.sqlite"
    code, message = refused(lambda: SessionDatabase(str(path)))
    assert (code, message) == ("SQLITE_CANTOPEN", "SQLITE_CANTOPEN: unable to open database file")
    assert str(tmp_path) not in message


def test_a_database_another_connection_holds_is_busy_at_once(path: str) -> None:
    db = SessionDatabase(path)
    execute(db, "CREATE TABLE t(x)")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        assert refused(lambda: execute(db, "INSERT INTO t VALUES (1)")) == (
            "SQLITE_BUSY", "SQLITE_BUSY: database is locked")
    finally:
        other.execute("ROLLBACK")
        other.close()
    execute(db, "INSERT INTO t VALUES (1)")
    db.close()


def test_the_integrator_must_hand_an_absolute_path() -> None:
    with pytest.raises(ValueError, match="absolute file path"):
        SessionDatabase("relative.db")
    with pytest.raises(ValueError, match="absolute file path"):
        SessionDatabase("file:x.db?mode=memory")
