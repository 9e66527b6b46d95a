"""Against the REAL npm registry (https://registry.npmjs.org): these tests need the network and
the registry to be up (marker `registry`). lodash, dayjs and ramda at the versions the Go
catalog names are fetched, verified, stored, and their trees read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store import Store
from supervisor.packages import DEFAULT_REGISTRY, PackageLibrary, RegistryClient

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def npm(tmp_path_factory: pytest.TempPathFactory) -> PackageLibrary:
    root = tmp_path_factory.mktemp("npm")
    store = Store.open(root / "db.sqlite")
    return PackageLibrary(store, root / "packages", RegistryClient(DEFAULT_REGISTRY))


def test_registry_lodash_from_the_real_registry(npm: PackageLibrary) -> None:
    [lodash] = npm.add("lodash-4.17.21")
    assert lodash.id == "lodash@4.17.21"
    assert lodash.manifest["main"] == "lodash.js"
    assert json.loads(lodash.tree.read("package.json"))["version"] == "4.17.21"
    source = lodash.tree.read("lodash.js")
    assert b"var VERSION = '4.17.21';" in source
    assert lodash.tree.kind("fp") == "dir" and lodash.file_count > 1000


@pytest.mark.parametrize(("spec", "main"), [("dayjs@1.11.10", "dayjs.min.js"), ("ramda@0.29.0", None)])
def test_registry_dayjs_and_ramda_from_the_real_registry(npm: PackageLibrary, spec: str, main: str | None) -> None:
    [pkg] = npm.add(spec)
    if main is not None:
        assert pkg.manifest["main"] == main and pkg.tree.kind(main) == "file"
    entry = pkg.manifest.get("main") or "src/index.js"
    assert pkg.tree.kind(entry.removeprefix("./")) == "file"
    assert npm.resolve_library(spec.replace("@", "-")).id == pkg.id


def test_registry_everything_fetched_verifies(npm: PackageLibrary, tmp_path: Path) -> None:
    npm.add("ramda@0.29.0")
    report = npm.verify()
    assert report.ok and report.packages >= 1
