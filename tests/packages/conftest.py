"""Fixtures of the package store's tests: a local registry-shaped server (registry_server.py, a
unique module name: test folders here are not packages) and a PackageLibrary over a real SQLite
file and a real blob directory, pointed at it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_server import LocalRegistry

from store import FaultInjector, Store
from supervisor import Supervisor
from supervisor.packages import PackageLibrary, RegistryClient

# The daemon helpers of tests/http (a real `vm-system serve`), for the end-to-end tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "http"))


@pytest.fixture
def registry() -> Iterator[LocalRegistry]:
    with LocalRegistry() as reg:
        yield reg


@pytest.fixture
def faults() -> FaultInjector:
    return FaultInjector()


@pytest.fixture
def store(tmp_path: Path, faults: FaultInjector) -> Iterator[Store]:
    with Store.open(tmp_path / "db.sqlite", faults=faults) as s:
        yield s


@pytest.fixture
def sup(tmp_path: Path, registry: LocalRegistry) -> Iterator[Supervisor]:
    """A Supervisor on a real SQLite file whose package store adds from the local registry."""
    s = Supervisor.open(tmp_path / "db.sqlite", npm_registry=registry.url)
    yield s
    s.close()


@pytest.fixture
def library(tmp_path: Path, store: Store, registry: LocalRegistry) -> Iterator[PackageLibrary]:
    lib = PackageLibrary(store, tmp_path / "db.sqlite.data" / "packages", RegistryClient(registry.url))
    yield lib
    lib.close()

