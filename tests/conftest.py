"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def transpiler_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned TypeScript transpiler's tarballs, fetched once a run from the REAL npm
    registry (only tests marked `registry` ask for it); a test copies them into its daemon's
    data directory (`<db>.data/typescript/transpiler/`) so that none fetches them again."""
    from supervisor.packages import RegistryClient, registry_url
    from supervisor.packages.locked import load_locked
    from supervisor.typescript import TRANSPILER_LOCK

    cache = tmp_path_factory.mktemp("transpiler")
    client = RegistryClient(registry_url())
    try:
        load_locked(TRANSPILER_LOCK, cache, client)
    finally:
        client.close()
    return cache
