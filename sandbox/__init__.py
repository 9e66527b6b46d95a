"""The engine: QuickJS compiled to WebAssembly, hosted by wasmtime.

Knows nothing of templates, sessions, HTTP or SQLite.
"""

from sandbox.errors import (
    EngineUnavailable,
    GuestCorrupted,
    ImageError,
    SandboxBusy,
    SandboxClosed,
    SandboxError,
)
from sandbox.limits import Limits
from sandbox.outcome import ErrorInfo, Event, Metrics, Outcome, SessionState
from sandbox.sandbox import Sandbox

__all__ = [
    "EngineUnavailable", "ErrorInfo", "Event", "GuestCorrupted", "ImageError", "Limits",
    "Metrics", "Outcome", "Sandbox", "SandboxBusy", "SandboxClosed", "SandboxError",
    "SessionState",
]
