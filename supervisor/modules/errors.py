"""The one failure a module's host half raises."""

from __future__ import annotations


class ModuleError(Exception):
    """A module call failed: `code` is Node's error code where Node has one (`ENOENT`,
    `EACCES`, `EISDIR`, ...) or the module's own (`ERR_FETCH_REFUSED`, `SQLITE_ERROR`, ...);
    `message` is the whole text the script sees, which names the script's own path or URL,
    never a host path."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message
