"""Typed errors of the store.

Every error carries a store error kind and, when it is about one, its subject (see
`vocabulary.errors`): the adapters map those to API codes in one table and never parse
messages. Nothing here is persisted: an execution's stored error is its outcome's.
"""

from __future__ import annotations

from vocabulary import ErrorKind, Subject


class StoreError(Exception):
    """Base of every error the store raises on purpose."""

    kind: ErrorKind = ErrorKind.INTERNAL
    subject: Subject | None = None


# --- not found -------------------------------------------------------------------


class NotFound(StoreError):
    kind = ErrorKind.NOT_FOUND


class TemplateNotFound(NotFound):
    subject = Subject.TEMPLATE


class SessionNotFound(NotFound):
    subject = Subject.SESSION


class ExecutionNotFound(NotFound):
    subject = Subject.EXECUTION


class ImageNotFound(NotFound):
    # No route exposes images; the supervisor treats this one as INTERNAL-worthy.
    subject = Subject.IMAGE


# --- uniqueness ------------------------------------------------------------------


class AlreadyExists(StoreError):
    kind = ErrorKind.EXISTS


class TemplateExists(AlreadyExists):
    subject = Subject.TEMPLATE


# The duplicate sub-resources of a template.
class CapabilityExists(AlreadyExists):
    subject = Subject.CAPABILITY


class StartupFileExists(AlreadyExists):
    subject = Subject.STARTUP_FILE


class ModuleExists(AlreadyExists):
    subject = Subject.MODULE


class LibraryExists(AlreadyExists):
    subject = Subject.LIBRARY


class DuplicateId(AlreadyExists):
    # Ids come from the store or from the supervisor, never from a client: a clash is a bug.
    kind = ErrorKind.INTERNAL


class SessionBusy(StoreError):
    """The session already has a running execution (a second daemon on the same file?)."""

    kind = ErrorKind.BUSY
    subject = Subject.SESSION


# --- bad input ----------------------------------------------------------------


class InvalidValue(StoreError, ValueError):
    """A value the store refuses to write (unknown status, naive datetime, not JSON, ...)."""

    kind = ErrorKind.INVALID


# --- broken pipeline invariants --------------------------------------------------


class InvariantViolation(StoreError):
    """A write that would break an invariant of DESIGN.md; always a bug in the caller."""


class ExecutionNotRunning(InvariantViolation):
    """Events appended to, or a finish of, an execution that is not running."""


class EventSequenceError(InvariantViolation):
    """An event whose seq does not continue right after the last stored one."""


class InvalidTransition(InvariantViolation):
    """A session status change the lifecycle does not allow (a closed session reopened)."""


# --- the database itself -----------------------------------------------------------


class StoreWriteError(StoreError):
    """SQLite refused or failed a write; the whole transaction was rolled back."""

    def __init__(self, op: str, cause: BaseException) -> None:
        super().__init__(f"store write {op!r} failed: {cause}")
        self.op = op
        self.cause = cause


class StoreReadError(StoreError):
    """SQLite failed a read."""

    def __init__(self, op: str, cause: BaseException) -> None:
        super().__init__(f"store read {op!r} failed: {cause}")
        self.op = op
        self.cause = cause


class StoreOpenError(StoreError):
    """The file cannot be opened as a store."""


class SchemaTooNew(StoreOpenError):
    """The file was written by a newer vm-system; it is left untouched."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"{path} has schema version {found}, this vm-system knows up to {supported}: "
            "upgrade vm-system (the file was not modified)"
        )
        self.path = path
        self.found = found
        self.supported = supported


class StoreClosed(StoreError):
    kind = ErrorKind.CLOSED
    subject = Subject.STORE
