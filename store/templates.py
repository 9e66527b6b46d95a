"""Templates and what hangs off them: settings, capabilities, startup files, modules, libraries."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from .database import Database, unique_violation
from .defaults import default_settings
from .encoding import (
    Clock,
    dump_json,
    format_ts,
    id_or_new,
    load_json,
    parse_ts,
    require_dict,
)
from .errors import (
    AlreadyExists,
    CapabilityExists,
    DuplicateId,
    InvalidValue,
    LibraryExists,
    ModuleExists,
    StartupFileExists,
    TemplateExists,
    TemplateNotFound,
)
from .records import (
    Capability,
    StartupFile,
    Template,
    TemplateDetail,
    TemplateLibrary,
    TemplateModule,
    TemplateSettings,
)

SETTINGS_SECTIONS = ("limits", "runtime", "resolver")


def _template(row: dict[str, Any]) -> Template:
    return Template(
        id=row["id"],
        name=row["name"],
        engine=row["engine"],
        created_at=parse_ts(row["created_at"]),
        updated_at=parse_ts(row["updated_at"]),
    )


def _settings(row: dict[str, Any]) -> TemplateSettings:
    return TemplateSettings(
        template_id=row["template_id"],
        limits=load_json(row["limits"]),
        runtime=load_json(row["runtime"]),
        resolver=load_json(row["resolver"]),
    )


def _capability(row: dict[str, Any]) -> Capability:
    return Capability(
        id=row["id"],
        template_id=row["template_id"],
        kind=row["kind"],
        name=row["name"],
        enabled=bool(row["enabled"]),
        config=load_json(row["config"]),
        created_at=parse_ts(row["created_at"]),
    )


def _startup_file(row: dict[str, Any]) -> StartupFile:
    return StartupFile(
        id=row["id"],
        template_id=row["template_id"],
        path=row["path"],
        order_index=row["order_index"],
        mode=row["mode"],
        created_at=parse_ts(row["created_at"]),
    )


def _require_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidValue(f"{what} must be a non-empty string")
    return value


def _require_template_in(conn: sqlite3.Connection, template_id: str) -> None:
    if conn.execute("SELECT 1 FROM templates WHERE id = ?", (template_id,)).fetchone() is None:
        raise TemplateNotFound(f"template {template_id} not found")


def _touch(conn: sqlite3.Connection, template_id: str, now: str) -> None:
    # Doubles as the existence check inside the transaction: no row touched, no template.
    cursor = conn.execute("UPDATE templates SET updated_at = ? WHERE id = ?", (now, template_id))
    if cursor.rowcount == 0:
        raise TemplateNotFound(f"template {template_id} not found")


class TemplatesMixin:
    _db: Database
    _clock: Clock

    # --- templates ------------------------------------------------------------------------

    def create_template(
        self,
        name: str,
        *,
        engine: str = "quickjs",
        limits: dict[str, Any] | None = None,
        runtime: dict[str, Any] | None = None,
        resolver: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> Template:
        """Create a template with its settings; a missing section gets the docs/api.md default."""
        _require_text(name, "name")
        _require_text(engine, "engine")
        template_id = id_or_new(id, "template id")
        given = {"limits": limits, "runtime": runtime, "resolver": resolver}
        sections = default_settings()
        encoded = {}
        for key in SETTINGS_SECTIONS:
            value = given[key] if given[key] is not None else sections[key]
            encoded[key] = dump_json(require_dict(value, key), key)
        now = format_ts(self._clock())
        with self._db.write("create_template") as conn:
            try:
                conn.execute(
                    "INSERT INTO templates (id, name, engine, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (template_id, name, engine, now, now),
                )
            except sqlite3.IntegrityError as exc:
                columns = unique_violation(exc)
                if columns == "templates.name":
                    raise TemplateExists(f"a template named {name!r} already exists") from None
                if columns == "templates.id":
                    raise DuplicateId(f"template id {template_id} already used") from None
                raise
            conn.execute(
                "INSERT INTO template_settings (template_id, limits, runtime, resolver)"
                " VALUES (?, ?, ?, ?)",
                (template_id, encoded["limits"], encoded["runtime"], encoded["resolver"]),
            )
        return Template(template_id, name, engine, parse_ts(now), parse_ts(now))

    def get_template(self, template_id: str) -> Template:
        with self._db.read("get_template") as db:
            rows = list(db.query("SELECT * FROM templates WHERE id = ?", [template_id]))
        if not rows:
            raise TemplateNotFound(f"template {template_id} not found")
        return _template(rows[0])

    def get_template_by_name(self, name: str) -> Template:
        with self._db.read("get_template_by_name") as db:
            rows = list(db.query("SELECT * FROM templates WHERE name = ?", [name]))
        if not rows:
            raise TemplateNotFound(f"no template named {name!r}")
        return _template(rows[0])

    def list_templates(self) -> list[Template]:
        """Newest first."""
        with self._db.read("list_templates") as db:
            rows = list(db.query("SELECT * FROM templates ORDER BY created_at DESC, rowid DESC"))
        return [_template(row) for row in rows]

    def delete_template(self, template_id: str) -> None:
        """Delete a template and its settings and sub-resources; sessions are untouched."""
        with self._db.write("delete_template") as conn:
            cursor = conn.execute("DELETE FROM templates WHERE id = ?", (template_id,))
            if cursor.rowcount == 0:
                raise TemplateNotFound(f"template {template_id} not found")

    def get_template_detail(self, template_id: str) -> TemplateDetail:
        """The template with settings and every sub-resource, as of one instant."""
        with self._db.snapshot():
            return TemplateDetail(
                template=self.get_template(template_id),
                settings=self.get_settings(template_id),
                capabilities=self.list_capabilities(template_id),
                startup_files=self.list_startup_files(template_id),
                modules=self.list_modules(template_id),
                libraries=self.list_libraries(template_id),
            )

    def _require_template(self, template_id: str, op: str) -> None:
        with self._db.read(op) as db:
            found = list(db.query("SELECT 1 AS found FROM templates WHERE id = ?", [template_id]))
        if not found:
            raise TemplateNotFound(f"template {template_id} not found")

    # --- settings ---------------------------------------------------------------------------

    def get_settings(self, template_id: str) -> TemplateSettings:
        with self._db.read("get_settings") as db:
            rows = list(
                db.query("SELECT * FROM template_settings WHERE template_id = ?", [template_id])
            )
        if not rows:
            raise TemplateNotFound(f"template {template_id} not found")
        return _settings(rows[0])

    def update_settings(
        self,
        template_id: str,
        *,
        limits: dict[str, Any] | None = None,
        runtime: dict[str, Any] | None = None,
        resolver: dict[str, Any] | None = None,
    ) -> TemplateSettings:
        """PATCH semantics: each given section's keys are merged into the stored section.

        The merge happens inside the write transaction, so two concurrent patches of
        different keys both survive (a read-modify-write in the caller would lose one).
        """
        patch = {"limits": limits, "runtime": runtime, "resolver": resolver}
        for key, value in patch.items():
            if value is not None:
                require_dict(value, key)
        now = format_ts(self._clock())
        with self._db.write("update_settings") as conn:
            _touch(conn, template_id, now)
            row = conn.execute(
                "SELECT limits, runtime, resolver FROM template_settings WHERE template_id = ?",
                (template_id,),
            ).fetchone()
            merged = {}
            for key, stored in zip(SETTINGS_SECTIONS, row, strict=True):
                section = load_json(stored)
                if patch[key] is not None:
                    section.update(patch[key])
                merged[key] = section
            conn.execute(
                "UPDATE template_settings SET limits = ?, runtime = ?, resolver = ?"
                " WHERE template_id = ?",
                (
                    dump_json(merged["limits"], "limits"),
                    dump_json(merged["runtime"], "runtime"),
                    dump_json(merged["resolver"], "resolver"),
                    template_id,
                ),
            )
        return TemplateSettings(template_id, merged["limits"], merged["runtime"], merged["resolver"])

    # --- capabilities -------------------------------------------------------------------------

    def add_capability(
        self,
        template_id: str,
        kind: str,
        name: str,
        *,
        enabled: bool = True,
        config: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> Capability:
        _require_text(kind, "kind")
        _require_text(name, "name")
        capability_id = id_or_new(id, "capability id")
        config = {} if config is None else require_dict(config, "config")
        config_json = dump_json(config, "config")
        now = format_ts(self._clock())
        with self._db.write("add_capability") as conn:
            _touch(conn, template_id, now)
            try:
                conn.execute(
                    "INSERT INTO capabilities"
                    " (id, template_id, kind, name, enabled, config, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (capability_id, template_id, kind, name, int(bool(enabled)), config_json, now),
                )
            except sqlite3.IntegrityError as exc:
                columns = unique_violation(exc)
                if columns == "capabilities.id":
                    raise DuplicateId(f"capability id {capability_id} already used") from None
                if columns is not None:
                    raise CapabilityExists(
                        f"template {template_id} already has capability {kind}/{name}"
                    ) from None
                raise
        return Capability(
            capability_id, template_id, kind, name, bool(enabled), config, parse_ts(now)
        )

    def list_capabilities(self, template_id: str) -> list[Capability]:
        """In the order they were added."""
        with self._db.read("list_capabilities") as db:
            rows = list(
                db.query(
                    "SELECT * FROM capabilities WHERE template_id = ?"
                    " ORDER BY created_at, rowid",
                    [template_id],
                )
            )
        if not rows:
            self._require_template(template_id, "list_capabilities")
        return [_capability(row) for row in rows]

    def delete_capability(self, template_id: str, capability_id: str) -> bool:
        """True if it existed. An unknown template raises TemplateNotFound."""
        return self._delete_child(
            "delete_capability",
            "DELETE FROM capabilities WHERE template_id = ? AND id = ?",
            template_id,
            capability_id,
        )

    # --- startup files ---------------------------------------------------------------------

    def add_startup_file(
        self,
        template_id: str,
        path: str,
        *,
        order_index: int = 0,
        mode: str = "eval",
        id: str | None = None,
    ) -> StartupFile:
        """Stores `path` and `mode` as given: checking them is the supervisor's job."""
        _require_text(path, "path")
        _require_text(mode, "mode")
        if not isinstance(order_index, int) or isinstance(order_index, bool):
            raise InvalidValue("order_index must be an integer")
        startup_id = id_or_new(id, "startup file id")
        now = format_ts(self._clock())
        with self._db.write("add_startup_file") as conn:
            _touch(conn, template_id, now)
            try:
                conn.execute(
                    "INSERT INTO startup_files"
                    " (id, template_id, path, order_index, mode, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (startup_id, template_id, path, order_index, mode, now),
                )
            except sqlite3.IntegrityError as exc:
                columns = unique_violation(exc)
                if columns == "startup_files.id":
                    raise DuplicateId(f"startup file id {startup_id} already used") from None
                if columns is not None:
                    raise StartupFileExists(
                        f"template {template_id} already has startup file {path!r}"
                    ) from None
                raise
        return StartupFile(startup_id, template_id, path, order_index, mode, parse_ts(now))

    def list_startup_files(self, template_id: str) -> list[StartupFile]:
        """In run order: order_index, then path."""
        with self._db.read("list_startup_files") as db:
            rows = list(
                db.query(
                    "SELECT * FROM startup_files WHERE template_id = ?"
                    " ORDER BY order_index, path",
                    [template_id],
                )
            )
        if not rows:
            self._require_template(template_id, "list_startup_files")
        return [_startup_file(row) for row in rows]

    def delete_startup_file(self, template_id: str, startup_file_id: str) -> bool:
        return self._delete_child(
            "delete_startup_file",
            "DELETE FROM startup_files WHERE template_id = ? AND id = ?",
            template_id,
            startup_file_id,
        )

    # --- modules and libraries --------------------------------------------------------------

    def add_module(self, template_id: str, name: str) -> TemplateModule:
        now = self._add_named("template_modules", ModuleExists, "module", template_id, name)
        return TemplateModule(template_id, name, now)

    def list_modules(self, template_id: str) -> list[TemplateModule]:
        rows = self._list_named("template_modules", template_id)
        return [TemplateModule(template_id, r["name"], parse_ts(r["created_at"])) for r in rows]

    def remove_module(self, template_id: str, name: str) -> bool:
        return self._delete_child(
            "remove_module",
            "DELETE FROM template_modules WHERE template_id = ? AND name = ?",
            template_id,
            name,
        )

    def add_library(self, template_id: str, name: str) -> TemplateLibrary:
        now = self._add_named("template_libraries", LibraryExists, "library", template_id, name)
        return TemplateLibrary(template_id, name, now)

    def list_libraries(self, template_id: str) -> list[TemplateLibrary]:
        rows = self._list_named("template_libraries", template_id)
        return [TemplateLibrary(template_id, r["name"], parse_ts(r["created_at"])) for r in rows]

    def remove_library(self, template_id: str, name: str) -> bool:
        return self._delete_child(
            "remove_library",
            "DELETE FROM template_libraries WHERE template_id = ? AND name = ?",
            template_id,
            name,
        )

    # --- shared plumbing ----------------------------------------------------------------------

    def _add_named(
        self,
        table: str,
        exists_error: type[AlreadyExists],
        what: str,
        template_id: str,
        name: str,
    ) -> datetime:
        _require_text(name, f"{what} name")
        now = format_ts(self._clock())
        with self._db.write(f"add_{what}") as conn:
            _touch(conn, template_id, now)
            try:
                conn.execute(
                    f"INSERT INTO {table} (template_id, name, created_at) VALUES (?, ?, ?)",
                    (template_id, name, now),
                )
            except sqlite3.IntegrityError as exc:
                if unique_violation(exc) is not None:
                    raise exists_error(
                        f"template {template_id} already has {what} {name!r}"
                    ) from None
                raise
        return parse_ts(now)

    def _list_named(self, table: str, template_id: str) -> list[dict[str, Any]]:
        with self._db.read(f"list_{table}") as db:
            rows = list(
                db.query(
                    f"SELECT name, created_at FROM {table} WHERE template_id = ?"
                    " ORDER BY created_at, rowid",
                    [template_id],
                )
            )
        if not rows:
            self._require_template(template_id, f"list_{table}")
        return rows

    def _delete_child(self, op: str, sql: str, template_id: str, key: str) -> bool:
        with self._db.write(op) as conn:
            _require_template_in(conn, template_id)
            deleted = conn.execute(sql, (template_id, key)).rowcount > 0
            if deleted:  # a no-op must not bump updated_at
                _touch(conn, template_id, format_ts(self._clock()))
        return deleted
