"""The index of stored npm packages: one row per package (name, version), one per file.

The files' contents live outside the database, content-addressed by sha256 (the supervisor's
blob store); the index says which package holds which content at which path. A package is
indexed in one transaction, whole or not at all. Removing one answers the contents no other
package still references, for the caller to delete.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .database import Database
from .encoding import Clock, dump_json, format_ts, load_json, parse_ts


@dataclass(frozen=True)
class PackageFile:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str
    tarball_url: str
    manifest: dict[str, Any]
    file_count: int
    unpacked_size: int
    added_at: datetime


_COLUMNS = "name, version, integrity, tarball_url, manifest, file_count, unpacked_size, added_at"


def _package(row: dict[str, Any]) -> Package:
    return Package(
        name=row["name"],
        version=row["version"],
        integrity=row["integrity"],
        tarball_url=row["tarball_url"],
        manifest=load_json(row["manifest"]),
        file_count=row["file_count"],
        unpacked_size=row["unpacked_size"],
        added_at=parse_ts(row["added_at"]),
    )


class PackagesMixin:
    _db: Database
    _clock: Clock

    def add_package(
        self,
        name: str,
        version: str,
        *,
        integrity: str,
        tarball_url: str,
        manifest: dict[str, Any],
        files: list[PackageFile],
    ) -> tuple[Package, bool]:
        """Index a package and its files in one transaction; (the package, whether this call
        added it). A package already indexed is kept as it is."""
        manifest_text = dump_json(manifest, "manifest")
        now = format_ts(self._clock())
        size = sum(f.size for f in files)
        with self._db.write("add_package") as conn:
            cursor = conn.execute(
                f"INSERT INTO packages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name, version) DO NOTHING",
                (name, version, integrity, tarball_url, manifest_text, len(files), size, now),
            )
            added = cursor.rowcount > 0
            if added:
                conn.executemany(
                    "INSERT INTO package_files (name, version, path, sha256, size)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(name, version, f.path, f.sha256, f.size) for f in files],
                )
        package = self.get_package(name, version)
        assert package is not None  # just written, and packages are removed only by name
        return package, added

    def get_package(self, name: str, version: str) -> Package | None:
        with self._db.read("get_package") as db:
            rows = list(db.query(f"SELECT {_COLUMNS} FROM packages WHERE name = ? AND version = ?",
                                 [name, version]))
        return _package(rows[0]) if rows else None

    def list_packages(self, name: str | None = None) -> list[Package]:
        """Every stored package (or every version of `name`), by name then time added."""
        with self._db.read("list_packages") as db:
            if name is None:
                rows = db.query(f"SELECT {_COLUMNS} FROM packages ORDER BY name, added_at, rowid")
            else:
                rows = db.query(f"SELECT {_COLUMNS} FROM packages WHERE name = ? ORDER BY added_at, rowid",
                                [name])
            return [_package(r) for r in rows]

    def package_files(self, name: str, version: str) -> list[PackageFile]:
        with self._db.read("package_files") as db:
            rows = db.query("SELECT path, sha256, size FROM package_files WHERE name = ? AND version = ?"
                            " ORDER BY path", [name, version])
            return [PackageFile(r["path"], r["sha256"], r["size"]) for r in rows]

    def remove_package(self, name: str, version: str) -> list[str] | None:
        """Unindex a package; the sha256s no other package references (the caller deletes
        them), or None when it was not stored."""
        with self._db.write("remove_package") as conn:
            digests = [r[0] for r in conn.execute(
                "SELECT DISTINCT sha256 FROM package_files WHERE name = ? AND version = ?", (name, version))]
            if conn.execute("DELETE FROM packages WHERE name = ? AND version = ?",
                            (name, version)).rowcount == 0:
                return None
            return [d for d in digests if not _referenced(conn, d)]

    def package_blob_referenced(self, sha256: str) -> bool:
        with self._db.read("package_blob_referenced") as db:
            return bool(list(db.query("SELECT 1 FROM package_files WHERE sha256 = ? LIMIT 1", [sha256])))


def _referenced(conn: sqlite3.Connection, digest: str) -> bool:
    return conn.execute("SELECT 1 FROM package_files WHERE sha256 = ? LIMIT 1", (digest,)).fetchone() is not None

