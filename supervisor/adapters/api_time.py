"""How the API writes a time (RFC 3339, UTC, microseconds, `Z`): responses, and the CLI's
`run --json` document, which must read the same embedded as from a daemon. No imports beyond
the standard library: `vm-system run` imports it."""

from __future__ import annotations

from datetime import UTC, datetime


def api_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
