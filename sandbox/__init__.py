"""The engine: QuickJS compiled to WebAssembly, hosted by wasmtime.

Knows nothing of templates, sessions, HTTP or SQLite. Everything outside the package takes
what it needs from here, never from the modules behind it.
"""

from sandbox.dirty_pages import DirtyPages, dirty_pages
from sandbox.engine import GuestEngine, guest_engine
from sandbox.errors import (
    EngineUnavailable,
    GuestCorrupted,
    ImageError,
    SandboxBusy,
    SandboxClosed,
    SandboxError,
)
from sandbox.host_bridge import HostError, HostFunction, Pending
from sandbox.image import FORMAT_VERSION, encode_image, installation_key
from sandbox.limits import Limits
from sandbox.log import before_first_log
from sandbox.memory_layout import MemoryImage
from sandbox.module_loader import ModuleLoader, ModuleRefused
from sandbox.outcome import ErrorInfo, Event, Metrics, Outcome, SessionState
from sandbox.sandbox import Sandbox

__all__ = [
    "FORMAT_VERSION", "DirtyPages", "EngineUnavailable", "ErrorInfo", "Event", "GuestCorrupted",
    "GuestEngine", "HostError", "HostFunction", "ImageError", "Limits", "MemoryImage", "Metrics", "ModuleLoader",
    "ModuleRefused", "Outcome", "Pending", "Sandbox",
    "SandboxBusy", "SandboxClosed", "SandboxError", "SessionState", "before_first_log",
    "dirty_pages", "encode_image", "guest_engine", "installation_key",
]
