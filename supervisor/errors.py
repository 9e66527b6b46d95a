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


# ----- the package store (supervisor/packages) -----------------------------------------------


class PackageNotFound(SupervisorError):
    """No such package or version: on the registry (libs add), or in the store (get, remove)."""

    code = "PACKAGE_NOT_FOUND"


class RegistryUnreachable(SupervisorError):
    """The registry could not be reached (refused, unknown host, timed out) or failed (5xx)."""

    code = "REGISTRY_UNREACHABLE"
    public = True  # a 502 written for the client: it names the registry, never a traceback


class RegistryBadResponse(SupervisorError):
    """The registry answered something unusable: metadata that is not JSON, too large, without
    the fields a release needs, or a tarball on another origin."""

    code = "REGISTRY_BAD_RESPONSE"
    public = True


class IntegrityMismatch(SupervisorError):
    """A tarball whose sha512 is not the one its metadata gives, or a stored file whose bytes
    are no longer the ones indexed."""

    code = "INTEGRITY_MISMATCH"


class PackageRefused(SupervisorError):
    """A package that is not stored because it is unsafe or unusable: links, paths leading out,
    a tar bomb, no sha512 integrity, a `main` outside the package, ..."""

    code = "PACKAGE_REFUSED"
