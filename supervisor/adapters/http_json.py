"""Store records as the JSON the API returns: RFC 3339 UTC times with microseconds, lists as
lists (never null), the field names of API.md."""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from datetime import datetime, timezone
from typing import Any

from starlette.responses import Response

import store as store_mod


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(value: Any) -> Any:
    """A record (dataclass), list or dict, with datetimes as RFC 3339 strings."""
    if isinstance(value, datetime):
        return timestamp(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: record(getattr(value, f.name)) for f in fields(value) if f.name != "data"}
    if isinstance(value, list | tuple):
        return [record(v) for v in value]
    if isinstance(value, dict):
        return {k: record(v) for k, v in value.items()}
    return value


def template_detail(detail: store_mod.TemplateDetail) -> dict[str, Any]:
    return {
        "template": record(detail.template),
        "settings": record(detail.settings),
        "capabilities": record(detail.capabilities),
        "startup_files": record(detail.startup_files),
        "modules": record(detail.modules),
        "libraries": record(detail.libraries),
    }


def session(value: store_mod.Session) -> dict[str, Any]:
    out = record(value)
    out.pop("settings", None)  # internal: the limits captured at spawn
    return out


class JSONBody(Response):
    """A JSON response built without a response-model round trip (the hot path)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()
