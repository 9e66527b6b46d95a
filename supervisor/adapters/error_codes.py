"""The API error code of every error the core lets through: the one table from the engine's
and the store's error kinds to docs/api.md's codes (which the HTTP adapter turns into statuses).

The engine and the store say what went wrong in their own words (`vocabulary.ErrorKind` and
the subject it is about); the core's own errors already speak the API (`SupervisorError.code`:
the supervisor is the domain that API serves).
"""

from __future__ import annotations

from sandbox import SandboxError
from supervisor import StoreError, SupervisorError
from vocabulary import ErrorKind, Subject

INTERNAL = "INTERNAL"

# A kind and subject not listed here is INTERNAL: a bug, or a failure the client cannot fix.
CODE_BY_KIND: dict[tuple[ErrorKind, Subject | None], str] = {
    (ErrorKind.NOT_FOUND, None): "NOT_FOUND",
    (ErrorKind.NOT_FOUND, Subject.TEMPLATE): "TEMPLATE_NOT_FOUND",
    (ErrorKind.NOT_FOUND, Subject.SESSION): "SESSION_NOT_FOUND",
    (ErrorKind.NOT_FOUND, Subject.EXECUTION): "EXECUTION_NOT_FOUND",
    # No route serves images: a 500, whose code only the daemon's log shows.
    (ErrorKind.NOT_FOUND, Subject.IMAGE): "IMAGE_NOT_FOUND",
    (ErrorKind.EXISTS, None): "CONFLICT",
    (ErrorKind.EXISTS, Subject.TEMPLATE): "TEMPLATE_EXISTS",
    (ErrorKind.EXISTS, Subject.CAPABILITY): "CAPABILITY_EXISTS",
    (ErrorKind.EXISTS, Subject.STARTUP_FILE): "STARTUP_FILE_EXISTS",
    (ErrorKind.EXISTS, Subject.MODULE): "MODULE_EXISTS",
    (ErrorKind.EXISTS, Subject.LIBRARY): "LIBRARY_EXISTS",
    # A session is a sandbox with a row: the sandbox busy or closed is the session's state.
    (ErrorKind.BUSY, Subject.SESSION): "SESSION_BUSY",
    (ErrorKind.BUSY, Subject.SANDBOX): "SESSION_BUSY",
    (ErrorKind.CLOSED, Subject.SANDBOX): "SESSION_NOT_READY",
    (ErrorKind.INVALID, None): "VALIDATION_ERROR",
    # Like IMAGE_NOT_FOUND, only ever logged: an image comes from the daemon's own database.
    (ErrorKind.INVALID, Subject.IMAGE): "IMAGE_INVALID",
}


def api_code(exc: BaseException) -> str:
    """The code docs/api.md gives this error; INTERNAL for anything not raised on purpose."""
    if isinstance(exc, SupervisorError):
        return exc.code
    if isinstance(exc, (SandboxError, StoreError)):
        return CODE_BY_KIND.get((exc.kind, exc.subject), INTERNAL)
    return INTERNAL
