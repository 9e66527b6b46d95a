"""The schema and its migrations.

The version lives in `PRAGMA user_version` (in the file header, written in the same
transaction as the migration). Migrations are ordered and each one is idempotent
(`IF NOT EXISTS`), so a migration interrupted by a crash, or run by two processes opening a
new file at once, converges on the same schema.

To change the schema: append a `Migration(n + 1, ...)`; never edit a released one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from .errors import SchemaTooNew

log = structlog.get_logger("store.schema")


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sqlite3.Connection], None]


def _v1_initial(conn: sqlite3.Connection) -> None:
    # Enumerations (status, kind, event type) are checked in Python, not with CHECK
    # constraints: adding a status must not require rebuilding a table of millions of rows.
    for statement in _V1_STATEMENTS:
        conn.execute(statement)


_V1_STATEMENTS = [
    """CREATE TABLE IF NOT EXISTS templates (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        engine TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS template_settings (
        template_id TEXT PRIMARY KEY REFERENCES templates(id) ON DELETE CASCADE,
        limits TEXT NOT NULL,
        runtime TEXT NOT NULL,
        resolver TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS capabilities (
        id TEXT PRIMARY KEY,
        template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        config TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (template_id, kind, name)
    )""",
    """CREATE TABLE IF NOT EXISTS startup_files (
        id TEXT PRIMARY KEY,
        template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        order_index INTEGER NOT NULL,
        mode TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (template_id, path)
    )""",
    """CREATE TABLE IF NOT EXISTS template_modules (
        template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (template_id, name)
    )""",
    """CREATE TABLE IF NOT EXISTS template_libraries (
        template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (template_id, name)
    )""",
    # template_id is deliberately not a foreign key: deleting a template leaves its sessions.
    """CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        template_id TEXT NOT NULL,
        workspace_id TEXT NOT NULL,
        base_commit_oid TEXT NOT NULL,
        worktree_path TEXT NOT NULL,
        status TEXT NOT NULL,
        settings TEXT NOT NULL,
        created_at TEXT NOT NULL,
        closed_at TEXT,
        last_error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS sessions_by_status ON sessions (status, created_at)",
    "CREATE INDEX IF NOT EXISTS sessions_by_created ON sessions (created_at)",
    """CREATE TABLE IF NOT EXISTS executions (
        id TEXT PRIMARY KEY,
        session_id TEXT REFERENCES sessions(id),
        kind TEXT NOT NULL,
        input TEXT,
        path TEXT,
        args TEXT NOT NULL,
        env TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        result TEXT,
        error TEXT,
        metrics TEXT NOT NULL,
        session_state TEXT
    )""",
    # Newest-first listing: an index entry ends with the rowid, so (started_at, rowid) DESC
    # is read straight from this index, and the rowid breaks ties within one microsecond.
    "CREATE INDEX IF NOT EXISTS executions_by_session ON executions (session_id, started_at)",
    "CREATE INDEX IF NOT EXISTS executions_by_started ON executions (started_at)",
    # DESIGN.md: a session runs one execution at a time. The supervisor's lock enforces it in
    # one process; this index enforces it for every process on the file. Session-less runs
    # (NULL) are not limited. It also lists running rows for reconcile without a scan.
    """CREATE UNIQUE INDEX IF NOT EXISTS executions_running ON executions (session_id)
        WHERE status = 'running'""",
    # WITHOUT ROWID clusters events by (execution_id, seq): the next page after a cursor is
    # one B-tree descent and a sequential read, whatever the size of the table.
    """CREATE TABLE IF NOT EXISTS events (
        execution_id TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        ts TEXT NOT NULL,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (execution_id, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS images (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        execution_id TEXT REFERENCES executions(id) ON DELETE SET NULL,
        format_version INTEGER NOT NULL,
        guest_sha256 TEXT NOT NULL,
        memory_size INTEGER NOT NULL,
        size INTEGER NOT NULL,
        data BLOB NOT NULL,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS images_by_session ON images (session_id, created_at)",
    # ON DELETE SET NULL on images.execution_id needs this to avoid a scan per deleted row.
    "CREATE INDEX IF NOT EXISTS images_by_execution ON images (execution_id)",
]


def _v2_packages(conn: sqlite3.Connection) -> None:
    # The npm package store (store/packages.py): the index; the files' contents live in the
    # data directory, content-addressed.
    for statement in _V2_STATEMENTS:
        conn.execute(statement)


_V2_STATEMENTS = [
    """CREATE TABLE IF NOT EXISTS packages (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        integrity TEXT NOT NULL,
        tarball_url TEXT NOT NULL,
        manifest TEXT NOT NULL,
        file_count INTEGER NOT NULL,
        unpacked_size INTEGER NOT NULL,
        added_at TEXT NOT NULL,
        PRIMARY KEY (name, version)
    )""",
    """CREATE TABLE IF NOT EXISTS package_files (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (name, version, path),
        FOREIGN KEY (name, version) REFERENCES packages (name, version) ON DELETE CASCADE
    ) WITHOUT ROWID""",
    # The blob collector asks "does anything else still hold this content?" per removed file.
    "CREATE INDEX IF NOT EXISTS package_files_by_sha256 ON package_files (sha256)",
]


MIGRATIONS: list[Migration] = [
    Migration(1, "initial schema", _v1_initial),
    Migration(2, "npm package store", _v2_packages),
]
LATEST_VERSION = MIGRATIONS[-1].version


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_not_too_new(conn: sqlite3.Connection, path: str) -> int:
    found = schema_version(conn)
    if found > LATEST_VERSION:
        raise SchemaTooNew(path, found, LATEST_VERSION)
    return found


def migrate(conn: sqlite3.Connection, path: str) -> list[int]:
    """Bring the schema up to LATEST_VERSION; return the versions applied.

    `conn` is in autocommit mode. The version is re-read under the write lock, so two
    processes opening the same new file apply each migration exactly once between them.
    """
    if check_not_too_new(conn, path) == LATEST_VERSION:
        return []  # the common case: no write lock taken at all
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = check_not_too_new(conn, path)
        applied = []
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            migration.apply(conn)
            # PRAGMA does not take parameters; the value is an int from our own table.
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            applied.append(migration.version)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if applied:
        log.info("store.migrated", path=path, versions=applied)
    return applied
