"""A real supervisor on a real SQLite file, with a worktree and a library directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor import Supervisor


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "worktree"
    root.mkdir()
    (root / "main.js").write_text("console.log('running main'); 40 + 2")
    return root


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / "greet@1.0.0.js").write_text("globalThis.greet = (n) => 'hello ' + n;")
    return libs


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vm-system.db"


@pytest.fixture
def sup(db_path: Path, library_dir: Path, tmp_path: Path) -> Iterator[Supervisor]:
    supervisor = Supervisor.open(db_path, library_dir=library_dir, run_root=tmp_path)
    yield supervisor
    supervisor.close()
