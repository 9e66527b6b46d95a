"""A tree of files that imports resolve in: a session's worktree, or one stored package.

Paths are POSIX, relative and normalised (no `.`, no `..`, no leading or trailing `/`); the
empty string is the tree's root. A tree never answers for anything outside itself: a worktree's
symlinks that lead out read as absent, a package has no links at all.
"""

from __future__ import annotations

from typing import Literal, Protocol

Kind = Literal["file", "dir"]


class FileTree(Protocol):
    def kind(self, path: str) -> Kind | None:
        """What `path` is in the tree, or None if it is not in it."""

    def read(self, path: str) -> bytes:
        """The bytes of the file `path`; FileNotFoundError if it is not a file of the tree."""


class EmptyTree:
    """A tree with nothing in it: the worktree of a sandbox that has none (a template's base
    image, the TypeScript transpiler), whose imports reach packages only."""

    def kind(self, path: str) -> Kind | None:
        return "dir" if path == "" else None

    def read(self, path: str) -> bytes:
        raise FileNotFoundError(path)
