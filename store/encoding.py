"""How values are written into columns and read back: timestamps, JSON, ids.

Timestamps are stored as fixed-width ISO-8601 UTC text with microseconds
(`2026-11-25T12:00:00.123456Z`): fixed width makes text order equal time order, so indexes
on them sort correctly, and the text is readable in the sqlite3 shell.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .errors import InvalidValue

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_ts(value: datetime) -> str:
    if value.tzinfo is None:
        raise InvalidValue(f"naive datetime {value!r}: the store only keeps aware UTC times")
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    # isoformat is C code (this runs once per streamed event); timespec keeps the width
    # fixed even when microsecond is 0.
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def parse_ts_or_none(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def new_id() -> str:
    return str(uuid.uuid4())


def check_id(value: str, what: str) -> str:
    """Ids are UUID strings in canonical lower-case form, whoever created them."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise InvalidValue(f"{what} must be a valid UUID, got {value!r}") from None
    canonical = str(parsed)
    if canonical != value:
        raise InvalidValue(f"{what} must be a canonical lower-case UUID, got {value!r}")
    return value


def id_or_new(value: str | None, what: str) -> str:
    return new_id() if value is None else check_id(value, what)


# Compact separators: events are the bulk of the file. One encoder for the process:
# json.dumps with non-default options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dump_json(value: Any, what: str) -> str:
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidValue(f"{what} is not JSON-serialisable: {exc}") from None


def dump_json_or_none(value: Any, what: str) -> str | None:
    return None if value is None else dump_json(value, what)


def load_json(text: str) -> Any:
    return json.loads(text)


def load_json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidValue(f"{what} must be a dict, got {type(value).__name__}")
    return value


def require_member(value: str, allowed: frozenset[str], what: str) -> str:
    if value not in allowed:
        raise InvalidValue(f"{what} must be one of {sorted(allowed)}, got {value!r}")
    return value
