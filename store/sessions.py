"""Sessions: live sandboxes made from a template, and their lifecycle status."""

from __future__ import annotations

import sqlite3
from typing import Any

from vocabulary import SESSION_STATUSES

from .database import Database, fetch_dict, unique_violation
from .encoding import (
    Clock,
    dump_json,
    format_ts,
    id_or_new,
    load_json,
    parse_ts,
    parse_ts_or_none,
    require_dict,
    require_member,
)
from .errors import DuplicateId, InvalidTransition, InvalidValue, SessionNotFound, TemplateNotFound
from .records import Session


def _session(row: dict[str, Any]) -> Session:
    return Session(
        id=row["id"],
        template_id=row["template_id"],
        workspace_id=row["workspace_id"],
        base_commit_oid=row["base_commit_oid"],
        worktree_path=row["worktree_path"],
        status=row["status"],
        settings=load_json(row["settings"]),
        created_at=parse_ts(row["created_at"]),
        closed_at=parse_ts_or_none(row["closed_at"]),
        last_error=row["last_error"],
    )


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidValue(f"{what} must be a string")
    return value


class SessionsMixin:
    _db: Database
    _clock: Clock

    def create_session(
        self,
        template_id: str,
        workspace_id: str,
        base_commit_oid: str,
        worktree_path: str,
        *,
        status: str = "starting",
        settings: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> Session:
        """Create a session of an existing template.

        `settings=None` snapshots the template's current settings in the same transaction,
        so the session's limits are exactly those of the template at spawn.
        """
        for value, what in (
            (workspace_id, "workspace_id"),
            (base_commit_oid, "base_commit_oid"),
            (worktree_path, "worktree_path"),
        ):
            _text(value, what)
        require_member(status, SESSION_STATUSES, "session status")
        session_id = id_or_new(id, "session id")
        settings_json = None if settings is None else dump_json(
            require_dict(settings, "settings"), "settings"
        )
        now = format_ts(self._clock())
        with self._db.write("create_session") as conn:
            row = conn.execute(
                "SELECT limits, runtime, resolver FROM template_settings WHERE template_id = ?",
                (template_id,),
            ).fetchone()
            if row is None:
                raise TemplateNotFound(f"template {template_id} not found")
            if settings_json is None:
                settings = {k: load_json(v) for k, v in zip(("limits", "runtime", "resolver"), row, strict=True)}
                settings_json = dump_json(settings, "settings")
            try:
                conn.execute(
                    "INSERT INTO sessions (id, template_id, workspace_id, base_commit_oid,"
                    " worktree_path, status, settings, created_at, closed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        session_id,
                        template_id,
                        workspace_id,
                        base_commit_oid,
                        worktree_path,
                        status,
                        settings_json,
                        now,
                        now if status == "closed" else None,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                if unique_violation(exc) == "sessions.id":
                    raise DuplicateId(f"session id {session_id} already used") from None
                raise
        return Session(
            id=session_id,
            template_id=template_id,
            workspace_id=workspace_id,
            base_commit_oid=base_commit_oid,
            worktree_path=worktree_path,
            status=status,
            settings=load_json(settings_json),
            created_at=parse_ts(now),
            closed_at=parse_ts(now) if status == "closed" else None,
            last_error=None,
        )

    def get_session(self, session_id: str) -> Session:
        with self._db.read("get_session") as db:
            rows = list(db.query("SELECT * FROM sessions WHERE id = ?", [session_id]))
        if not rows:
            raise SessionNotFound(f"session {session_id} not found")
        return _session(rows[0])

    def list_sessions(self, status: str | None = None, *, limit: int | None = None) -> list[Session]:
        """Newest first; all of them, or those with `status`."""
        if status is not None:
            require_member(status, SESSION_STATUSES, "session status")
        sql = "SELECT * FROM sessions"
        params: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._db.read("list_sessions") as db:
            rows = list(db.query(sql, params))
        return [_session(row) for row in rows]

    def set_session_status(
        self, session_id: str, status: str, *, last_error: str | None = None
    ) -> Session:
        """Move a session to `status`; `last_error`, when given, replaces the stored one.

        `closed` is final: closing again is a no-op that keeps the first `closed_at`, and
        any other move out of `closed` raises InvalidTransition.
        """
        require_member(status, SESSION_STATUSES, "session status")
        if last_error is not None:
            _text(last_error, "last_error")
        now = format_ts(self._clock())
        with self._db.write("set_session_status") as conn:
            row = conn.execute("SELECT status FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                raise SessionNotFound(f"session {session_id} not found")
            current = row[0]
            if current == "closed" and status != "closed":
                raise InvalidTransition(f"session {session_id} is closed; cannot become {status}")
            if not (current == "closed" and status == "closed"):
                conn.execute(
                    "UPDATE sessions SET status = ?,"
                    " closed_at = CASE WHEN ? = 'closed' THEN ? ELSE closed_at END,"
                    " last_error = COALESCE(?, last_error)"
                    " WHERE id = ?",
                    (status, status, now, last_error, session_id),
                )
            record = fetch_dict(conn, "SELECT * FROM sessions WHERE id = ?", (session_id,))
        assert record is not None  # read under the write lock right after the check above
        return _session(record)
