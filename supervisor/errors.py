"""Typed errors of the core. Each carries the API error code (API.md) and optional details;
the HTTP adapter maps codes to statuses in one table, the CLI prints `error: CODE: message`."""

from __future__ import annotations

from typing import Any


class SupervisorError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationError(SupervisorError):
    code = "VALIDATION_ERROR"


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


class LibraryNotFound(SupervisorError):
    code = "LIBRARY_NOT_FOUND"


class EngineUnsupported(SupervisorError):
    """A template asked for an engine other than quickjs (API.md: 422)."""

    code = "ENGINE_UNSUPPORTED"


class NotFound(SupervisorError):
    """A sub-resource (capability, startup file, module, library) that does not exist."""

    code = "NOT_FOUND"
