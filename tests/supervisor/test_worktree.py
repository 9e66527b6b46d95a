"""Worktree paths: lexical checks first, then the real path of what was opened."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supervisor.errors import InvalidPath, ValidationError, WorktreeFileNotFound
from supervisor.worktree import check_relative, read_worktree_file


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    (root / "lib").mkdir(parents=True)
    (root / "main.js").write_text("40 + 2")
    (root / "lib" / "util.js").write_text("export const u = 1")
    (root / "inside-link.js").symlink_to(root / "main.js")
    (tmp_path / "secret.txt").write_text("top secret")
    (root / "escape.js").symlink_to(tmp_path / "secret.txt")
    (root / "dir-escape").symlink_to(tmp_path)
    (root / "dangling.js").symlink_to(tmp_path / "nothing-here")
    os.mkfifo(root / "pipe.js")
    return root


def test_reads_files_and_symlinks_that_stay_inside(tree: Path) -> None:
    assert read_worktree_file(str(tree), "main.js") == ("main.js", "40 + 2")
    assert read_worktree_file(str(tree), "./lib/../lib/util.js") == ("lib/util.js", "export const u = 1")
    assert read_worktree_file(str(tree), "inside-link.js")[1] == "40 + 2"


@pytest.mark.parametrize("path", [
    "../secret.txt", "/etc/passwd", "lib/../../secret.txt", "..", "", "   ", "a\0b", "C:\\x.js",
    "escape.js", "dir-escape/secret.txt", "dangling.js",
])
def test_escapes_are_invalid_paths(tree: Path, path: str) -> None:
    with pytest.raises(InvalidPath):
        read_worktree_file(str(tree), path)


@pytest.mark.parametrize("path", ["missing.js", "lib", "pipe.js"])
def test_missing_or_not_regular_files(tree: Path, path: str) -> None:
    with pytest.raises(WorktreeFileNotFound):
        read_worktree_file(str(tree), path)


def test_bad_worktree_and_content(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidPath):
        read_worktree_file("relative/dir", "main.js")
    with pytest.raises(InvalidPath):
        read_worktree_file(str(tmp_path / "no-such-dir"), "main.js")
    (tree / "latin1.js").write_bytes(b"caf\xe9")
    with pytest.raises(ValidationError, match="UTF-8"):
        read_worktree_file(str(tree), "latin1.js")
    (tree / "big.js").write_bytes(b"x" * 2000)
    with pytest.raises(ValidationError, match="larger"):
        read_worktree_file(str(tree), "big.js", max_bytes=1000)


def test_lexical_check_touches_nothing() -> None:
    assert check_relative("a/./b/../c.js") == "a/c.js"
    with pytest.raises(InvalidPath):
        check_relative("../../etc/passwd")
