"""The types of the events an execution records, and which of them end its stream."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

EventType = Literal["input_echo", "console", "host_call", "value", "exception", "limit", "system"]
EVENT_TYPES: frozenset[EventType] = frozenset(get_args(EventType))
TERMINAL_EVENT_TYPES: frozenset[EventType] = frozenset({"value", "exception", "limit"})

# DESIGN.md: "value ⇔ result and status ok; exception ⇔ error; limit ⇔ timeout or
# limit_exceeded". cancelled and crashed carry an error and may end either way. Keyed by str:
# it is looked up with statuses a caller gives.
TERMINAL_FOR_STATUS: Mapping[str, frozenset[EventType]] = MappingProxyType({
    "ok": frozenset({"value"}),
    "error": frozenset({"exception"}),
    "timeout": frozenset({"limit"}),
    "limit_exceeded": frozenset({"limit"}),
    "cancelled": frozenset({"exception", "limit"}),
    "crashed": frozenset({"exception", "limit"}),
})
