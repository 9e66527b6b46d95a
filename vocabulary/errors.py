"""What went wrong when the engine or the store refused a call: a kind, and the subject it is
about. The errors carry these, never an API code: only the adapters map them to codes and
statuses, so the engine and the store need know nothing of the API that serves them."""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    INTERNAL = "internal"  # a bug, or the host failed (the database, the guest module)
    NOT_FOUND = "not_found"
    EXISTS = "exists"
    BUSY = "busy"  # it is doing something else; the same call may succeed later
    CLOSED = "closed"  # it was closed and takes no more work
    INVALID = "invalid"  # a value it refuses (malformed input, a tampered image)


class Subject(StrEnum):
    SANDBOX = "sandbox"
    IMAGE = "image"
    STORE = "store"
    TEMPLATE = "template"
    CAPABILITY = "capability"
    STARTUP_FILE = "startup_file"
    MODULE = "module"
    LIBRARY = "library"
    SESSION = "session"
    EXECUTION = "execution"
