"""Files of a session's worktree, read safely.

A path from a client is checked twice: lexically (relative, no NUL, not climbing out with
`..`) before anything touches the disk, and on what was actually opened: the file is opened
first (following symlinks), then the real path of the open descriptor is checked to lie inside
the worktree. The bytes read come from that same descriptor, so a symlink swapped between the
check and the read cannot redirect it (no check-then-reopen race).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path, PurePosixPath

from supervisor.errors import InvalidPath, ValidationError, WorktreeFileNotFound
from supervisor.unicode_text import holds_lone_surrogate, shown

MAX_FILE_BYTES = 8 * 1024 * 1024


def check_relative(path: str) -> str:
    """The normalised relative form of `path`, or InvalidPath. Touches no file."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidPath("path must be a non-empty relative path", path=path)
    if "\0" in path:
        raise InvalidPath("path must not contain NUL", path=path)
    if holds_lone_surrogate(path):
        raise InvalidPath("path must be Unicode text (it holds a lone surrogate)", path=shown(path))
    if path.startswith(("/", "\\")) or PurePosixPath(path).is_absolute() or (len(path) > 1 and path[1] == ":"):
        raise InvalidPath("path must be relative to the worktree", path=path)
    normal = os.path.normpath(path)
    if normal == ".." or normal.startswith("../") or normal == ".":
        raise InvalidPath("path escapes the worktree", path=path)
    return normal


def check_worktree(worktree: str) -> Path:
    """The worktree must be an existing absolute directory (docs/api.md: 422 otherwise)."""
    if not isinstance(worktree, str) or not os.path.isabs(worktree) or "\0" in worktree:
        raise InvalidPath("worktree_path must be an absolute path", worktree_path=str(worktree))
    if holds_lone_surrogate(worktree):
        raise InvalidPath("worktree_path must be Unicode text (it holds a lone surrogate)",
                          worktree_path=shown(worktree))
    root = Path(worktree)
    if not root.is_dir():
        raise InvalidPath("worktree_path must be an existing directory", worktree_path=worktree)
    return root


def _opened_path(fd: int, fallback: str) -> str:
    if sys.platform.startswith("linux"):
        return os.readlink(f"/proc/self/fd/{fd}")
    return os.path.realpath(fallback)


def read_worktree_file(worktree: str, path: str, max_bytes: int = MAX_FILE_BYTES) -> tuple[str, str]:
    """(normalised relative path, UTF-8 text) of a regular file inside the worktree."""
    relative = check_relative(path)
    root = os.path.realpath(check_worktree(worktree))
    candidate = os.path.join(root, relative)
    try:
        fd = os.open(candidate, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        if os.path.islink(candidate):
            raise InvalidPath("path is a symlink to nothing", path=path) from exc
        raise WorktreeFileNotFound(f"no such file in the worktree: {relative}", path=relative) from exc
    except IsADirectoryError as exc:
        raise WorktreeFileNotFound(f"not a file: {relative}", path=relative) from exc
    except OSError as exc:
        raise InvalidPath(f"cannot open {relative}: {exc.strerror}", path=relative) from exc
    try:
        real = _opened_path(fd, candidate)
        if os.path.commonpath([root, real]) != root:
            raise InvalidPath("path leads out of the worktree", path=path)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise WorktreeFileNotFound(f"not a regular file: {relative}", path=relative)
        if info.st_size > max_bytes:
            raise ValidationError(f"{relative} is larger than {max_bytes} bytes", path=relative)
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ValidationError(f"{relative} is larger than {max_bytes} bytes", path=relative)
    try:
        return relative, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{relative} is not valid UTF-8", path=relative) from exc
