"""Libraries: JavaScript files from the daemon's library directory, loaded into every session
of a template before its startup files.

A library is named `name@version` or `name-version` (letters, digits, `.`, `_`, `-`; no path
separators, no `..`) and lives in `<library_dir>/<name>.js`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from supervisor.errors import LibraryNotFound, SupervisorError, ValidationError
from supervisor.worktree import read_worktree_file

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._]*(@|-)[0-9][A-Za-z0-9._-]*$")
MAX_LIBRARY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Library:
    name: str
    source: str
    sha256: str


def check_library_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValidationError("library name must be name@version or name-version "
                              "(letters, digits, '.', '_', '-')", name=name)
    return name


def load_library(library_dir: Path | None, name: str) -> Library:
    """Read a library; LibraryNotFound if the directory is unset or the file is missing or unreadable."""
    check_library_name(name)
    if library_dir is None:
        raise LibraryNotFound(f"library {name} not found: the daemon has no library directory",
                              name=name)
    try:
        _, source = read_worktree_file(str(library_dir.resolve()), f"{name}.js", MAX_LIBRARY_BYTES)
    except SupervisorError as exc:  # missing, a symlink out, not UTF-8, too large
        raise LibraryNotFound(f"library {name} not found or not valid: {exc.message}",
                              name=name) from exc
    return Library(name, source, hashlib.sha256(source.encode()).hexdigest())
