"""What an evaluation produces: events as they happen, and one outcome at the end.

Plain, serialisable data (`to_dict`), so the same shapes can cross a process boundary.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

from vocabulary import FinishedStatus, OutcomeErrorKind

LEVELS = ("log", "info", "warn", "error", "debug")


class Event(NamedTuple):
    """One thing that happened. `type`: console | host_call | value | exception | limit | system.

    A named tuple rather than a frozen dataclass: one is made for every console line and host
    call, and a frozen dataclass takes twice as long to make."""

    type: str
    payload: dict[str, Any]
    ts: float  # seconds since the epoch

    def to_dict(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies, and this runs for every event.
        return {"type": self.type, "payload": copy.deepcopy(self.payload), "ts": self.ts}


@dataclass(frozen=True)
class ErrorInfo:
    kind: OutcomeErrorKind
    name: str
    message: str
    stack: str | None = None
    limit: dict[str, Any] | None = None  # {"name", "value", "used"}

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Metrics:
    wall_ms: float
    cpu_ms: float
    # Always None: the engine runs without fuel metering (docs/engine.md, "Limits"). The key
    # stays for clients of the API contract, which names it.
    fuel: int | None
    peak_memory_bytes: int
    output_bytes: int
    events: int
    host_calls: int = 0
    timers_fired: int = 0
    # Cleared by the script, or still pending when the evaluation ended (then cancelled).
    timers_cancelled: int = 0

    def to_dict(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict costs several microseconds per call.
        return {"wall_ms": self.wall_ms, "cpu_ms": self.cpu_ms, "fuel": self.fuel,
                "peak_memory_bytes": self.peak_memory_bytes, "output_bytes": self.output_bytes,
                "events": self.events, "host_calls": self.host_calls,
                "timers_fired": self.timers_fired, "timers_cancelled": self.timers_cancelled}


@dataclass(frozen=True)
class SessionState:
    """The sandbox after the evaluation: `kept`, or `rolled_back` to the named checkpoint."""

    state: Literal["kept", "rolled_back"]
    checkpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state} | ({"checkpoint": self.checkpoint} if self.checkpoint else {})


@dataclass(frozen=True)
class Outcome:
    status: FinishedStatus
    # When status is ok: {"type", "preview", "json"?, "json_omitted"?}. `json` is absent when
    # the value has no JSON form (undefined, functions, symbols, BigInts, NaN, -0, circular
    # values, a toJSON that throws); `json_omitted` (a sentence) says when it is absent because
    # of an engine limit: nested deeper than JSON_MAX_DEPTH (64) levels, longer than 1 MiB
    # (1,048,576 characters), or more than 262,144 values to walk.
    value: dict[str, Any] | None
    error: ErrorInfo | None
    events: list[Event] = field(default_factory=list)
    metrics: Metrics | None = None
    session_state: SessionState = SessionState("kept")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "value": self.value,
            "error": self.error.to_dict() if self.error else None,
            "events": [e.to_dict() for e in self.events],
            "metrics": self.metrics.to_dict() if self.metrics else None,
            "session_state": self.session_state.to_dict(),
        }
