"""Typed errors of the core. Each carries the API error code (docs/api.md) and optional details;
the HTTP adapter maps codes to statuses in one table, the CLI prints `error: CODE: message`.

The codes are the domain's own words, unlike the engine's and the store's (which carry kinds,
see `vocabulary.errors`): docs/api.md is the supervisor's contract, each class here is one of
its codes, and every implementation of the contract raises the same ones."""

from __future__ import annotations

from typing import Any


class SupervisorError(Exception):
    code = "INTERNAL"
    # A 500 normally hides its message and details (they may hold internals); a public one
    # is written for the client.
    public = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationError(SupervisorError):
    code = "VALIDATION_ERROR"


class InvalidRequest(SupervisorError):
    """Unknown keys or wrong types in a request's structure (docs/api.md: INVALID_REQUEST)."""

    code = "INVALID_REQUEST"


class SessionStartFailed(SupervisorError):
    """A startup file failed. The client gets a plain message and the ids to look at (the
    session, crashed, with the reason in `last_error`; the failed startup execution)."""

    code = "INTERNAL"
    public = True

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__("the session failed to start: a startup file failed "
                         "(see the session's last_error and the execution)", **details)
        self.reason = reason


class InvalidPath(SupervisorError):
    """Absolute, escaping the worktree lexically, or a symlink leading out."""

    code = "INVALID_PATH"


class WorktreeFileNotFound(SupervisorError):
    code = "FILE_NOT_FOUND"


class SessionNotReady(SupervisorError):
    code = "SESSION_NOT_READY"


class SessionBusy(SupervisorError):
    code = "SESSION_BUSY"


class StartupModeUnsupported(SupervisorError):
    code = "STARTUP_MODE_UNSUPPORTED"


class ModuleNotAllowed(SupervisorError):
    code = "MODULE_NOT_ALLOWED"


class CapabilityInvalid(SupervisorError):
    """A capability of an unknown kind, or whose config this daemon cannot honour (422)."""

    code = "INVALID_CAPABILITY"


class LibraryNotFound(SupervisorError):
    code = "LIBRARY_NOT_FOUND"


class EngineUnsupported(SupervisorError):
    """A template asked for an engine other than quickjs (docs/api.md: 422)."""

    code = "ENGINE_UNSUPPORTED"


class NotFound(SupervisorError):
    """A sub-resource (capability, startup file, module, library) that does not exist."""

    code = "NOT_FOUND"


class ShuttingDown(SupervisorError):
    """The supervisor is stopping: it starts no more executions or sessions (docs/api.md: 503)."""

    code = "SHUTTING_DOWN"
    public = True
