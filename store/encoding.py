"""How values are written into columns and read back: timestamps, JSON, ids.

Timestamps are stored as fixed-width ISO-8601 UTC text with microseconds
(`2026-11-25T12:00:00.123456Z`): fixed width makes text order equal time order, so indexes
on them sort correctly, and the text is readable in the sqlite3 shell.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidValue

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_ts(value: datetime) -> str:
    if value.tzinfo is None:
        raise InvalidValue(f"naive datetime {value!r}: the store only keeps aware UTC times")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
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


# How deep any JSON the store writes may nest: `[]` is 1 level, `{"a": []}` 2. The one
# constant of the daemon's depth contract: the HTTP layer refuses request bodies deeper than
# this, and a stored value whose `json` would go deeper is kept without it (`value_column`).
# Small enough that every recursive JSON codec of the process (json, pickle between worker
# processes, the response encoder) stays far from Python's recursion limit.
MAX_JSON_DEPTH = 64
# A value's `json` may nest MAX_JSON_DEPTH levels (the engine's limit is the same), inside its
# description `{"type", "preview", "json"}`: the columns holding one go one level deeper.
VALUE_COLUMN_DEPTH = MAX_JSON_DEPTH + 1
# Why a value's `json` is absent (a value's `preview` and `type` are always kept). The same
# words as the engine's reason for the same limit.
JSON_OMITTED = "json_omitted"
TOO_DEEP = f"it is nested deeper than {MAX_JSON_DEPTH} levels"
NOT_JSON = "not representable as strict JSON"

# Compact separators: events are the bulk of the file. One encoder for the process:
# json.dumps with non-default options builds a new encoder on every call. NaN and Infinity
# are not JSON: refused, so every column reads back as strict JSON.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# For text holding a lone surrogate (a JavaScript string can): UTF-8 cannot encode it, a
# \u escape keeps it exactly (it reads back as the same code unit).
_ASCII_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)
# Rows written before NaN was refused may hold NaN/Infinity: they read as null (what
# JSON.stringify makes of them), so what is served stays strict JSON.
_DECODER = json.JSONDecoder(parse_constant=lambda _name: None)


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` has containers nested more than `limit` deep. Iterative: any depth,
    even one no recursive walk survives, is answered."""
    if not isinstance(value, dict | list | tuple):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list | tuple):
                stack.append((child, depth + 1))
    return False


def _may_nest_deeper(text: str, limit: int) -> bool:
    # A JSON text nests at most as deep as it has brackets (C-speed count): most columns are
    # settled without walking the value.
    return text.count("[") + text.count("{") > limit


class _TooDeep(InvalidValue):
    pass


def dump_json(value: Any, what: str, limit: int = MAX_JSON_DEPTH) -> str:
    """The column text of `value` (nested at most `limit` deep); InvalidValue saying why when
    it has none."""
    try:
        text = _ENCODER.encode(value)
    except RecursionError:
        raise _TooDeep(f"{what} is nested deeper than {limit} levels") from None
    except (TypeError, ValueError) as exc:
        raise InvalidValue(f"{what} is not JSON-serialisable: {exc}") from None
    if _may_nest_deeper(text, limit) and nests_deeper_than(value, limit):
        raise _TooDeep(f"{what} is nested deeper than {limit} levels")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _ASCII_ENCODER.encode(value)
    return text


def dump_json_or_none(value: Any, what: str) -> str | None:
    return None if value is None else dump_json(value, what)


def value_column(value: dict[str, Any], what: str) -> tuple[dict[str, Any], str]:
    """A value description (`{"type", "preview", "json"?}`) as it is stored, and its column
    text (VALUE_COLUMN_DEPTH deep at most), encoded once: whatever the engine sent, a `json`
    nested deeper than MAX_JSON_DEPTH or not strict JSON is left out, and `json_omitted` says
    why."""
    try:
        return value, dump_json(value, what, VALUE_COLUMN_DEPTH)
    except InvalidValue as exc:
        if not isinstance(value, dict) or "json" not in value:
            raise
        fitted = {k: v for k, v in value.items() if k != "json"}
        fitted[JSON_OMITTED] = TOO_DEEP if isinstance(exc, _TooDeep) else NOT_JSON
        return fitted, dump_json(fitted, what, VALUE_COLUMN_DEPTH)


def load_json(text: str) -> Any:
    """A column's value. Never raises for its depth: a column nested deeper than
    MAX_JSON_DEPTH (only older versions wrote them) reads as a value without its `json`, or
    as `{"json_omitted": ...}` when that is not enough, so no row is ever unreadable and
    nothing served nests deeper than the contract says."""
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        return {JSON_OMITTED: TOO_DEEP}
    if _may_nest_deeper(text, VALUE_COLUMN_DEPTH) and nests_deeper_than(value, VALUE_COLUMN_DEPTH):
        if isinstance(value, dict) and "json" in value:
            fitted = {k: v for k, v in value.items() if k != "json"}
            if not nests_deeper_than(fitted, MAX_JSON_DEPTH):
                fitted[JSON_OMITTED] = TOO_DEEP
                return fitted
        return {JSON_OMITTED: TOO_DEEP}
    return value


def load_json_or_none(text: str | None) -> Any:
    return None if text is None else load_json(text)


def require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidValue(f"{what} must be a dict, got {type(value).__name__}")
    return value


def require_member(value: str, allowed: frozenset[str], what: str) -> str:
    if value not in allowed:
        raise InvalidValue(f"{what} must be one of {sorted(allowed)}, got {value!r}")
    return value
