"""Typed errors of the store.

Every error carries `code`, the API error code the supervisor maps to an HTTP status
(see docs/api.md), so the mapping lives in one table there and never parses messages.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""

    code: str = "INTERNAL"


# --- not found (404) -------------------------------------------------------------------


class NotFound(StoreError):
    code = "NOT_FOUND"


class TemplateNotFound(NotFound):
    code = "TEMPLATE_NOT_FOUND"


class SessionNotFound(NotFound):
    code = "SESSION_NOT_FOUND"


class ExecutionNotFound(NotFound):
    code = "EXECUTION_NOT_FOUND"


class ImageNotFound(NotFound):
    # No route exposes images; the supervisor treats this one as INTERNAL-worthy.
    code = "IMAGE_NOT_FOUND"


# --- uniqueness (409) ------------------------------------------------------------------


class AlreadyExists(StoreError):
    code = "CONFLICT"


class TemplateExists(AlreadyExists):
    code = "TEMPLATE_EXISTS"


# docs/api.md names no code for the duplicate sub-resources below; these are proposals (409).
class CapabilityExists(AlreadyExists):
    code = "CAPABILITY_EXISTS"


class StartupFileExists(AlreadyExists):
    code = "STARTUP_FILE_EXISTS"


class ModuleExists(AlreadyExists):
    code = "MODULE_EXISTS"


class LibraryExists(AlreadyExists):
    code = "LIBRARY_EXISTS"


class DuplicateId(AlreadyExists):
    # Ids come from the store or from the supervisor, never from a client: a clash is a bug.
    code = "INTERNAL"


class SessionBusy(StoreError):
    """The session already has a running execution (a second daemon on the same file?)."""

    code = "SESSION_BUSY"


# --- bad input (400/422) ----------------------------------------------------------------


class InvalidValue(StoreError, ValueError):
    """A value the store refuses to write (unknown status, naive datetime, not JSON, ...)."""

    code = "VALIDATION_ERROR"


# --- broken pipeline invariants (500) --------------------------------------------------


class InvariantViolation(StoreError):
    """A write that would break an invariant of DESIGN.md; always a bug in the caller."""

    code = "INTERNAL"


class ExecutionNotRunning(InvariantViolation):
    code = "INTERNAL"


class EventSequenceError(InvariantViolation):
    code = "INTERNAL"


class InvalidTransition(InvariantViolation):
    code = "INTERNAL"


# --- the database itself (500) -----------------------------------------------------------


class StoreWriteError(StoreError):
    """SQLite refused or failed a write; the whole transaction was rolled back."""

    code = "INTERNAL"

    def __init__(self, op: str, cause: BaseException) -> None:
        super().__init__(f"store write {op!r} failed: {cause}")
        self.op = op
        self.cause = cause


class StoreReadError(StoreError):
    code = "INTERNAL"

    def __init__(self, op: str, cause: BaseException) -> None:
        super().__init__(f"store read {op!r} failed: {cause}")
        self.op = op
        self.cause = cause


class StoreOpenError(StoreError):
    code = "INTERNAL"


class SchemaTooNew(StoreOpenError):
    """The file was written by a newer vm-system; it is left untouched."""

    code = "INTERNAL"

    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"{path} has schema version {found}, this vm-system knows up to {supported}: "
            "upgrade vm-system (the file was not modified)"
        )
        self.path = path
        self.found = found
        self.supported = supported


class StoreClosed(StoreError):
    code = "INTERNAL"
