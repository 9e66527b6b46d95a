"""The package store's service: dependencies (from the store alone, or fetched with
`with_deps`), removal and the collection of blobs no package holds, `verify`, an add that fails
mid-way leaving nothing, and an offline daemon working from what it has."""

from __future__ import annotations

from pathlib import Path

import pytest
from package_blobs import blob_files
from registry_server import LocalRegistry, closed_port_url

from store import FaultInjector, Store, StoreWriteError
from supervisor.errors import IntegrityMismatch, LibraryNotFound, PackageNotFound, PackageRefused
from supervisor.imports.tree import FileTree
from supervisor.packages import PackageLibrary, RegistryClient, StoredPackage


def _publish_graph(registry: LocalRegistry) -> None:
    registry.publish("app", "1.0.0", {"index.js": b"app"}, dependencies={"mid": "^1.0.0", "leaf": "~2.1.0"})
    registry.publish("mid", "1.0.0", {"index.js": b"mid 1.0"}, dependencies={"leaf": ">=2.0.0 <3"})
    registry.publish("mid", "1.2.0", {"index.js": b"mid 1.2"}, dependencies={"leaf": ">=2.0.0 <3"})
    registry.publish("mid", "2.0.0", {"index.js": b"mid 2"})
    registry.publish("leaf", "2.1.3", {"index.js": b"leaf"})
    registry.publish("leaf", "2.2.0", {"index.js": b"leaf 2.2"})


def test_a_stored_package_is_a_file_tree(library: PackageLibrary, registry: LocalRegistry) -> None:
    registry.publish("pkg", "1.0.0", {"a/b/c.js": b"c"})
    [pkg] = library.add("pkg@1.0.0")
    tree: FileTree = pkg.tree
    assert [tree.kind(p) for p in ("", "a", "a/b", "a/b/c.js", "a/b/c", "a/")] == \
        ["dir", "dir", "dir", "file", None, None]
    assert library.get("pkg", "1.0.0") == pkg
    assert library.get("pkg", "2.0.0") is None
    assert [p.id for p in library.list()] == ["pkg@1.0.0"]


def test_resolve_library_takes_every_form(library: PackageLibrary, registry: LocalRegistry) -> None:
    registry.publish("pkg", "1.0.0")
    registry.publish("pkg", "1.10.0")
    library.add("pkg@1.0.0")
    library.add("pkg@1.10.0")
    assert library.resolve_library("pkg-1.0.0").version == "1.0.0"
    assert library.resolve_library("pkg@1.0.0").version == "1.0.0"
    assert library.resolve_library("pkg").version == "1.10.0"  # the highest, by semver
    with pytest.raises(LibraryNotFound, match="libs add pkg@3.0.0"):
        library.resolve_library("pkg@3.0.0")


def test_with_deps_fetches_the_closure(library: PackageLibrary, registry: LocalRegistry) -> None:
    _publish_graph(registry)
    added = library.add("app@1.0.0", with_deps=True)
    assert [p.id for p in added] == ["app@1.0.0", "mid@1.2.0", "leaf@2.1.3"]
    closure = library.closure(["app@1.0.0"])
    assert {n: p.version for n, p in closure.items()} == {"app": "1.0.0", "mid": "1.2.0", "leaf": "2.1.3"}
    assert closure["mid"].tree.read("index.js") == b"mid 1.2"


def test_closure_names_a_missing_dependency(library: PackageLibrary, registry: LocalRegistry) -> None:
    _publish_graph(registry)
    library.add("app@1.0.0")
    with pytest.raises(LibraryNotFound, match=r"app@1\.0\.0 needs mid@'\^1\.0\.0'.*libs add --with-deps app@1\.0\.0"):
        library.closure(["app@1.0.0"])


def test_closure_uses_what_is_stored_and_refuses_two_versions(library: PackageLibrary,
                                                              registry: LocalRegistry) -> None:
    _publish_graph(registry)
    library.add("app@1.0.0", with_deps=True)
    library.add("mid@2.0.0")
    library.add("leaf@2.2.0")
    # The highest stored version in each range: leaf 2.1.x for app, 2.2.0 fits mid's range but app pins ~2.1.
    closure = library.closure(["app@1.0.0"])
    assert closure["leaf"].version == "2.1.3"
    with pytest.raises(LibraryNotFound, match="two versions of mid"):
        library.closure(["app@1.0.0", "mid@2.0.0"])


def test_dependency_conflicts_while_fetching_are_refused(library: PackageLibrary, registry: LocalRegistry) -> None:
    registry.publish("a", "1.0.0", dependencies={"b": "^1.0.0", "c": "^1.0.0"})
    registry.publish("b", "1.0.0", dependencies={"c": "^2.0.0"})
    registry.publish("c", "1.0.0")
    registry.publish("c", "2.0.0")
    with pytest.raises(LibraryNotFound, match="two versions of c"):
        library.add("a@1.0.0", with_deps=True)


def test_a_dependency_missing_on_the_registry(library: PackageLibrary, registry: LocalRegistry) -> None:
    registry.publish("a", "1.0.0", dependencies={"ghost": "^1.0.0"})
    with pytest.raises(PackageNotFound, match="ghost"):
        library.add("a@1.0.0", with_deps=True)
    registry.publish("ghost", "2.0.0")
    with pytest.raises(PackageNotFound, match=r"no version of ghost on the registry satisfies '\^1\.0\.0'"):
        library.add("a@1.0.0", with_deps=True)


def test_remove_collects_only_unshared_blobs(library: PackageLibrary, registry: LocalRegistry) -> None:
    registry.publish("one", "1.0.0", {"shared.js": b"the same bytes", "own.js": b"one's"})
    registry.publish("two", "1.0.0", {"shared.js": b"the same bytes", "own.js": b"two's"})
    one = library.add("one@1.0.0")[0]
    library.add("two@1.0.0")
    root = library._blobs.root
    assert len(blob_files(root)) == 5  # two package.json, two own.js, one shared.js
    assert library.remove("one", "1.0.0") is True
    assert library.remove("one", "1.0.0") is False
    assert len(blob_files(root)) == 3
    assert library.get("one", "1.0.0") is None
    two = library.get("two", "1.0.0")
    assert two is not None and two.tree.read("shared.js") == b"the same bytes"
    with pytest.raises(IntegrityMismatch, match="missing or damaged"):
        one.tree.read("own.js")  # a tree of a removed package reads nothing
    assert library.remove("two", "1.0.0") and blob_files(root) == []


def test_verify_finds_damaged_and_missing_blobs(library: PackageLibrary, registry: LocalRegistry) -> None:
    registry.publish("pkg", "1.0.0", {"a.js": b"aaa", "b.js": b"bbb"})
    pkg = library.add("pkg@1.0.0")[0]
    assert library.verify().ok
    files = {f.path: f for f in library._store.package_files("pkg", "1.0.0")}
    library._blobs.path_of(files["a.js"].sha256).write_bytes(b"tampered")
    library._blobs.path_of(files["b.js"].sha256).unlink()
    report = library.verify()
    assert not report.ok and (report.packages, report.files) == (1, 3)
    assert sorted((d.path, d.problem) for d in report.damaged) == [("a.js", "damaged"), ("b.js", "missing")]
    with pytest.raises(IntegrityMismatch, match="'a.js' is missing or damaged"):
        pkg.tree.read("a.js")
    # Removing and adding again repairs it.
    library.remove("pkg", "1.0.0")
    library.add("pkg@1.0.0")
    assert library.verify().ok


def test_a_symlinked_blob_is_damaged_not_followed(library: PackageLibrary, registry: LocalRegistry,
                                                  tmp_path: Path) -> None:
    registry.publish("pkg", "1.0.0", {"a.js": b"aaa"})
    library.add("pkg@1.0.0")
    [entry] = [f for f in library._store.package_files("pkg", "1.0.0") if f.path == "a.js"]
    path = library._blobs.path_of(entry.sha256)
    (tmp_path / "elsewhere").write_bytes(b"aaa")
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere")
    assert [d.problem for d in library.verify().damaged] == ["damaged"]


def test_a_failure_mid_add_leaves_nothing(library: PackageLibrary, registry: LocalRegistry, store: Store,
                                          faults: FaultInjector) -> None:
    registry.publish("pkg", "1.0.0", {"a.js": b"a", "b.js": b"b"})
    faults.fail_next("add_package", at="commit")
    with pytest.raises(StoreWriteError):
        library.add("pkg@1.0.0")
    assert store.list_packages() == [] and store.package_files("pkg", "1.0.0") == []
    assert blob_files(library._blobs.root) == []
    assert library.add("pkg@1.0.0")[0].file_count == 3  # and the next add works


def test_a_failure_mid_add_keeps_the_blobs_of_other_packages(library: PackageLibrary, registry: LocalRegistry,
                                                             faults: FaultInjector) -> None:
    registry.publish("one", "1.0.0", {"shared.js": b"same"})
    registry.publish("two", "1.0.0", {"shared.js": b"same"})
    library.add("one@1.0.0")
    faults.fail_next("add_package", at="commit")
    with pytest.raises(StoreWriteError):
        library.add("two@1.0.0")
    one = library.get("one", "1.0.0")
    assert one is not None and one.tree.read("shared.js") == b"same"
    assert library.verify().ok


def test_a_manifest_too_deep_to_store_is_refused(library: PackageLibrary, registry: LocalRegistry,
                                                 store: Store) -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(80):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    registry.publish("pkg", "1.0.0", manifest={"config": deep})
    with pytest.raises(PackageRefused, match="cannot be stored"):
        library.add("pkg@1.0.0")
    assert store.list_packages() == [] and blob_files(library._blobs.root) == []


def test_an_offline_daemon_works_with_what_it_has(library: PackageLibrary, registry: LocalRegistry,
                                                  store: Store, tmp_path: Path) -> None:
    _publish_graph(registry)
    library.add("app@1.0.0", with_deps=True)
    offline = PackageLibrary(store, library._blobs.root, RegistryClient(closed_port_url()))
    closure: dict[str, StoredPackage] = offline.closure(["app-1.0.0"])
    assert closure["leaf"].tree.read("index.js") == b"leaf"
    assert offline.add("app@1.0.0")[0].version == "1.0.0"  # stored: no request at all
    assert offline.verify().ok
    assert [p.id for p in offline.list()] == ["app@1.0.0", "leaf@2.1.3", "mid@1.2.0"]
