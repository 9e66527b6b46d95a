"""Opening a file: migrations, version guard, connection settings."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlite_utils

from store import SCHEMA_VERSION, SchemaTooNew, Store, StoreClosed, StoreOpenError
from supervisor.adapters.error_codes import api_code

TABLES = {
    "templates", "template_settings", "capabilities", "startup_files", "template_modules",
    "template_libraries", "sessions", "executions", "events", "images",
}


def _pragma(conn: sqlite3.Connection, name: str):
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_open_creates_parent_dirs_and_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "vm.db"
    with Store.open(path):
        pass
    raw = sqlite_utils.Database(path)
    assert set(raw.table_names()) >= TABLES
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.journal_mode == "wal"  # WAL is a property of the file: it persists
    assert raw["events"].pks == ["execution_id", "seq"]
    raw.close()


def test_reopening_keeps_data_and_reapplying_migrations_is_harmless(db_path: Path) -> None:
    with Store.open(db_path) as store:
        t = store.create_template("kept")
    # Pretend the version was never written (a migration is idempotent by contract).
    raw = sqlite3.connect(db_path)
    raw.execute("PRAGMA user_version = 0")
    raw.close()
    with Store.open(db_path) as store:
        assert store.get_template(t.id).name == "kept"
    with Store.open(db_path) as store:
        assert [x.id for x in store.list_templates()] == [t.id]
    raw = sqlite3.connect(db_path)
    assert _pragma(raw, "user_version") == SCHEMA_VERSION
    raw.close()


def test_a_newer_schema_is_refused_and_the_file_left_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    raw = sqlite3.connect(db_path)
    raw.execute("CREATE TABLE future (x)")
    raw.execute("INSERT INTO future VALUES (1)")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()

    with pytest.raises(SchemaTooNew) as raised:
        Store.open(db_path)

    assert raised.value.found == SCHEMA_VERSION + 1
    assert api_code(raised.value) == "INTERNAL"
    assert "upgrade" in str(raised.value)
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before
    raw = sqlite3.connect(db_path)
    assert _pragma(raw, "journal_mode") == "delete"  # not even switched to WAL
    assert raw.execute("SELECT name FROM sqlite_master").fetchall() == [("future",)]
    raw.close()


def test_not_a_database_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreOpenError):
        Store.open(path)


def test_every_connection_has_foreign_keys_and_busy_timeout(store: Store) -> None:
    seen = []

    def probe() -> None:
        conn = store._db.reader().conn
        seen.append((_pragma(conn, "foreign_keys"), _pragma(conn, "busy_timeout"),
                     _pragma(conn, "query_only")))

    probe()
    worker = threading.Thread(target=probe)
    worker.start()
    worker.join()
    writer = store._db._writer.conn
    assert seen == [(1, 5000, 1), (1, 5000, 1)]
    # The writer waits for other processes in _begin_immediate, with finer pauses than
    # SQLite's busy handler (see test_a_write_waits_for_another_connection_s_transaction).
    assert (_pragma(writer, "foreign_keys"), _pragma(writer, "busy_timeout")) == (1, 0)
    assert _pragma(writer, "synchronous") == 1  # NORMAL


def test_synchronous_full_can_be_chosen(db_path: Path) -> None:
    with Store.open(db_path, synchronous="FULL") as store:
        assert _pragma(store._db._writer.conn, "synchronous") == 2


def test_a_closed_store_refuses_work(db_path: Path) -> None:
    store = Store.open(db_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreClosed):
        store.create_template("late")
    with pytest.raises(StoreClosed):
        store.list_templates()


def test_reader_connections_of_finished_threads_are_closed(store: Store) -> None:
    def read() -> None:
        store.list_templates()

    for _ in range(20):
        worker = threading.Thread(target=read)
        worker.start()
        worker.join()
    read()
    # Each new reader reaps those of dead threads: only a couple can be outstanding.
    assert len(store._db._readers) <= 2


def test_many_openers_of_a_new_file_migrate_it_once(db_path: Path) -> None:
    stores: list[Store] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(4)

    def opener() -> None:
        try:
            gate.wait()
            stores.append(Store.open(db_path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        names = [f"t{i}" for i in range(len(stores))]
        for store, name in zip(stores, names, strict=True):
            store.create_template(name)
        assert sorted(t.name for t in stores[0].list_templates()) == names
    finally:
        for store in stores:
            store.close()


def test_a_write_waits_for_another_connection_s_transaction(db_path: Path) -> None:
    """Another process holding the write lock: the store's write waits, then goes through; one
    held longer than the busy timeout fails as a typed write error, nothing half-written."""
    import sqlite3
    import time

    from store import StoreWriteError

    with Store.open(db_path, busy_timeout_s=1.0) as store:
        other = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
        try:
            other.execute("BEGIN IMMEDIATE")
            order: list[str] = []

            def commit() -> None:
                order.append("commit")  # before the COMMIT: the write cannot end ahead of this
                other.execute("COMMIT")

            release = threading.Timer(0.15, commit)
            release.start()
            store.create_template("waited")  # raises if it gave up at its 1 s busy timeout
            order.append("written")
            release.join()
            # Causality, not a duration: the write went through because the other transaction
            # ended (it waited for it), and within the busy timeout (or it would have raised).
            assert order == ["commit", "written"], order
            other.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            with pytest.raises(StoreWriteError):
                store.create_template("never")
            # It gave up only at its busy timeout (a lower bound from the timeout itself) ...
            # generous: ... and did not wait on for the other transaction, held until after this
            assert 0.9 <= time.monotonic() - started < 30
            other.execute("COMMIT")
        finally:
            other.close()
        assert [t.name for t in store.list_templates()] == ["waited"]
