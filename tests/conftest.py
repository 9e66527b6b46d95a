"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox import Limits, Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """A fresh sandbox with the default limits."""
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def shared_sb() -> Iterator[Sandbox]:
    """One sandbox for a module's read-only checks (values, formatting): saves set-up time."""
    with Sandbox(limits=Limits(cpu_ms=2000, wall_ms=5000)) as sandbox:
        yield sandbox
