"""A tree of files that imports resolve in: a session's worktree, or one stored package.

Paths are POSIX, relative and normalised (no `.`, no `..`, no leading or trailing `/`); the
empty string is the tree's root. A tree never answers for anything outside itself: a worktree's
symlinks that lead out read as absent, a package has no links at all.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import Literal, Protocol

Kind = Literal["file", "dir"]


class FileTree(Protocol):
    def kind(self, path: str) -> Kind | None:
        """What `path` is in the tree, or None if it is not in it."""

    def read(self, path: str) -> bytes:
        """The bytes of the file `path`; FileNotFoundError if it is not a file of the tree."""


def implied_directories(paths: Iterable[str]) -> frozenset[str]:
    """The directories a tree of these file paths has: each file's ancestors, and the root."""
    dirs = {""}
    for path in paths:
        parent = posixpath.dirname(path)
        while parent not in dirs:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    return frozenset(dirs)


class EmptyTree:
    """A tree with nothing in it: the worktree of a sandbox that has none (a template's base
    image, the TypeScript transpiler), whose imports reach packages only."""

    def kind(self, path: str) -> Kind | None:
        return "dir" if path == "" else None

    def read(self, path: str) -> bytes:
        raise FileNotFoundError(path)


class MemoryTree:
    """Files held in memory (a package unpacked from a verified tarball)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self._files = dict(files)
        self._dirs = implied_directories(self._files)

    def kind(self, path: str) -> Kind | None:
        if path in self._files:
            return "file"
        return "dir" if path in self._dirs else None

    def read(self, path: str) -> bytes:
        try:
            return self._files[path]
        except KeyError:
            raise FileNotFoundError(path) from None
