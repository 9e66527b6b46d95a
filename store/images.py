"""Sandbox images: a session's linear memory saved after an execution, with its header.

The store keeps the bytes and the header fields as given; verifying the HMAC and the guest
hash before anything reaches guest memory is the engine's job.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from .database import Database, unique_violation
from .encoding import Clock, format_ts, id_or_new, parse_ts
from .errors import DuplicateId, ExecutionNotFound, ImageNotFound, InvalidValue, SessionNotFound
from .records import Image, ImageInfo

_INFO_COLUMNS = (
    "id, session_id, execution_id, format_version, guest_sha256, memory_size, size, created_at"
)


def _info_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "session_id": row["session_id"],
        "execution_id": row["execution_id"],
        "format_version": row["format_version"],
        "guest_sha256": row["guest_sha256"],
        "memory_size": row["memory_size"],
        "size": row["size"],
        "created_at": parse_ts(row["created_at"]),
    }


class ImagesMixin:
    _db: Database
    _clock: Clock

    def save_image(
        self,
        session_id: str,
        data: bytes,
        *,
        format_version: int,
        guest_sha256: str,
        memory_size: int,
        execution_id: str | None = None,
        id: str | None = None,
        created_at: datetime | None = None,
        keep_latest: int | None = None,
    ) -> ImageInfo:
        """Store an image. With `keep_latest=N`, the session's older images beyond the newest N
        (this one included) are deleted in the same transaction: a session that checkpoints
        after every execution keeps a bounded history."""
        if keep_latest is not None and (not isinstance(keep_latest, int) or keep_latest < 1):
            raise InvalidValue("keep_latest must be a positive int")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidValue("image data must be bytes")
        data = bytes(data)
        for value, what in ((format_version, "format_version"), (memory_size, "memory_size")):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidValue(f"{what} must be a non-negative int")
        if not isinstance(guest_sha256, str) or not guest_sha256:
            raise InvalidValue("guest_sha256 must be a non-empty string")
        image_id = id_or_new(id, "image id")
        created = format_ts(created_at if created_at is not None else self._clock())
        with self._db.write("save_image") as conn:
            # Two foreign keys, and SQLite does not say which one failed: check explicitly.
            if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
                raise SessionNotFound(f"session {session_id} not found")
            if execution_id is not None and conn.execute(
                "SELECT 1 FROM executions WHERE id = ?", (execution_id,)
            ).fetchone() is None:
                raise ExecutionNotFound(f"execution {execution_id} not found")
            try:
                conn.execute(
                    "INSERT INTO images (id, session_id, execution_id, format_version,"
                    " guest_sha256, memory_size, size, data, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        image_id,
                        session_id,
                        execution_id,
                        format_version,
                        guest_sha256,
                        memory_size,
                        len(data),
                        data,
                        created,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                if unique_violation(exc) == "images.id":
                    raise DuplicateId(f"image id {image_id} already used") from None
                raise
            if keep_latest is not None:
                conn.execute(
                    "DELETE FROM images WHERE session_id = ? AND id NOT IN ("
                    " SELECT id FROM images WHERE session_id = ?"
                    " ORDER BY created_at DESC, rowid DESC LIMIT ?)",
                    (session_id, session_id, keep_latest),
                )
        return ImageInfo(
            id=image_id,
            session_id=session_id,
            execution_id=execution_id,
            format_version=format_version,
            guest_sha256=guest_sha256,
            memory_size=memory_size,
            size=len(data),
            created_at=parse_ts(created),
        )

    def latest_image(self, session_id: str) -> Image | None:
        """The session's newest image, bytes included; None if it has none."""
        with self._db.read("latest_image") as db:
            rows = list(
                db.query(
                    f"SELECT {_INFO_COLUMNS}, data FROM images WHERE session_id = ?"
                    " ORDER BY created_at DESC, rowid DESC LIMIT 1",
                    [session_id],
                )
            )
        if not rows:
            return None
        return Image(**_info_fields(rows[0]), data=rows[0]["data"])

    def get_image(self, image_id: str) -> Image:
        with self._db.read("get_image") as db:
            rows = list(
                db.query(f"SELECT {_INFO_COLUMNS}, data FROM images WHERE id = ?", [image_id])
            )
        if not rows:
            raise ImageNotFound(f"image {image_id} not found")
        return Image(**_info_fields(rows[0]), data=rows[0]["data"])

    def list_images(self, session_id: str) -> list[ImageInfo]:
        """The session's images, newest first, without their bytes."""
        with self._db.read("list_images") as db:
            rows = list(
                db.query(
                    f"SELECT {_INFO_COLUMNS} FROM images WHERE session_id = ?"
                    " ORDER BY created_at DESC, rowid DESC",
                    [session_id],
                )
            )
        return [ImageInfo(**_info_fields(row)) for row in rows]
