"""`PackageLibrary`: the daemon's store of npm packages (`vm-system libs`, `/api/v1/libraries`).

    lib = PackageLibrary(store, data_dir / "packages", RegistryClient(registry_url()))
    [lodash] = lib.add("lodash@4.17.21")           # fetched, verified, unpacked, stored
    lib.resolve_library("lodash-4.17.21").tree.read("package.json")
    lib.closure(["express@4.18.2"])                 # name → package, dependencies included

Only `add` talks to the registry. Everything else reads the store and the blobs, so a daemon
offline keeps working with what it has. Adding writes the files' blobs first (content-
addressed: a blob left by a failed add is harmless and removed at once), then indexes the
package in one transaction; removing unindexes it, then deletes the blobs no other package
holds. One lock orders the two, so a removal never deletes a blob an add is indexing.
"""

from __future__ import annotations

import builtins
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

import store as store_mod
from store import PackageFile, Store
from supervisor.errors import LibraryNotFound, PackageRefused
from supervisor.packages.blobs import BlobDamaged, BlobMissing, BlobStore
from supervisor.packages.manifest import check_manifest, dependencies_of
from supervisor.packages.names import LibrarySpec, check_package_name, check_version, package_id, parse_spec
from supervisor.packages.registry import RegistryClient, Release
from supervisor.packages.semver import Range, Version, parse_range, parse_version
from supervisor.packages.tarball import UnpackLimits, unpack
from supervisor.packages.tree import PackageTree

log = structlog.get_logger("supervisor.packages")

# A dependency closure fetched by `add --with-deps` holds at most this many packages.
MAX_CLOSURE = 500
MAX_CACHED_PACKAGES = 512


@dataclass(frozen=True)
class StoredPackage:
    name: str
    version: str
    integrity: str
    tarball_url: str
    manifest: dict[str, Any]
    dependencies: dict[str, str]  # package.json `dependencies`: name → semver range
    file_count: int
    unpacked_size: int
    added_at: datetime
    tree: PackageTree = field(repr=False, compare=False)

    @property
    def id(self) -> str:
        return package_id(self.name, self.version)


@dataclass(frozen=True)
class Damage:
    package: str  # name@version
    path: str
    sha256: str
    problem: str  # "missing" | "damaged"


@dataclass(frozen=True)
class VerifyReport:
    packages: int
    files: int
    ok: bool
    damaged: list[Damage]


class PackageLibrary:
    def __init__(self, store: Store, root: Path, registry: RegistryClient,
                 limits: UnpackLimits | None = None) -> None:
        self._store = store
        self._blobs = BlobStore(root)
        self.registry = registry
        self._limits = limits or UnpackLimits()
        self._lock = threading.Lock()
        # A stored package's files never change (a new add of the same name and version is
        # another row, added later): its file list and tree are read once, not at every
        # session spawn (lodash has 1,054 files). Keyed by the row, so another process's
        # remove and add is a miss; bounded, oldest out first.
        self._trees: OrderedDict[tuple[str, str, str, datetime], StoredPackage] = OrderedDict()

    def close(self) -> None:
        self.registry.close()

    # ----- reading (never the network) -----

    def _stored(self, package: store_mod.Package) -> StoredPackage:
        key = (package.name, package.version, package.integrity, package.added_at)
        with self._lock:
            known = self._trees.get(key)
            if known is not None:
                self._trees.move_to_end(key)
                return known
        what = package_id(package.name, package.version)
        files = self._store.package_files(package.name, package.version)
        stored = StoredPackage(package.name, package.version, package.integrity, package.tarball_url,
                               package.manifest, dependencies_of(package.manifest, what), package.file_count,
                               package.unpacked_size, package.added_at, PackageTree(what, files, self._blobs))
        with self._lock:
            self._trees[key] = stored
            while len(self._trees) > MAX_CACHED_PACKAGES:
                self._trees.popitem(last=False)
        return stored

    def get(self, name: str, version: str) -> StoredPackage | None:
        check_package_name(name)
        check_version(version)
        package = self._store.get_package(name, version)
        return None if package is None else self._stored(package)

    def list(self) -> builtins.list[StoredPackage]:
        return [self._stored(p) for p in self._store.list_packages()]

    def _versions(self, name: str) -> dict[Version, store_mod.Package]:
        return {parse_version(p.version): p for p in self._store.list_packages(name)}

    def resolve_library(self, spec: str) -> StoredPackage:
        """The stored package a template's library spec names (`lodash@4.17.21`,
        `lodash-4.17.21`, or `lodash`: its highest stored version); LibraryNotFound if none."""
        wanted = parse_spec(spec)
        if wanted.version is not None:
            found = self.get(wanted.name, wanted.version)
        else:
            versions = self._versions(wanted.name)
            found = self._stored(versions[max(versions)]) if versions else None
        if found is None:
            raise LibraryNotFound(f"library {wanted} is not in the package store; "
                                  f"`vm-system libs add {wanted}` fetches it", name=str(wanted))
        return found

    def closure(self, specs: builtins.list[str | StoredPackage]) -> dict[str, StoredPackage]:
        """The packages `specs` name (or are: a package already resolved is not looked up
        again) and their dependencies, resolved from the store alone (for each the highest
        stored version that satisfies its range): name → package."""
        roots = [(spec, spec.id) if isinstance(spec, StoredPackage) else (self.resolve_library(spec), spec)
                 for spec in specs]

        def not_stored(name: str, range_text: str, wanted: Range, needed_by: str) -> StoredPackage:
            raise LibraryNotFound(
                f"{needed_by} needs {name}@{range_text!r}, which is not in the package store; "
                f"`vm-system libs add --with-deps {needed_by}` fetches its dependencies",
                name=name, range=range_text, needed_by=needed_by)

        return self._walk(roots, not_stored)

    def _walk(self, roots: builtins.list[tuple[StoredPackage, str]],
              missing: Callable[[str, str, Range, str], StoredPackage],
              limit: int | None = None) -> dict[str, StoredPackage]:
        """`roots` (each with who asked for it) and their dependencies, breadth first: for each
        name the highest stored version in its range, else what `missing` gives (it raises, or
        fetches one); at most `limit` packages. Name → package, in the order they were chosen."""
        chosen: dict[str, StoredPackage] = {}
        wanted_by: dict[str, str] = {}
        queue: deque[tuple[str, str, str]] = deque()  # name, range, who needs it
        for package, by in roots:
            self._choose(chosen, wanted_by, package, by)
            queue.extend((d, r, package.id) for d, r in package.dependencies.items())
        while queue:
            name, range_text, needed_by = queue.popleft()
            wanted = parse_range(range_text)
            if name in chosen:
                self._check_fits(chosen[name], wanted, needed_by, wanted_by[name])
                continue
            if limit is not None and len(chosen) >= limit:
                top = roots[0][0].id
                raise PackageRefused(f"{top} needs more than {limit} packages", package=top)
            versions = self._versions(name)
            best = wanted.best(builtins.list(versions))
            package = (self._stored(versions[best]) if best is not None
                       else missing(name, range_text, wanted, needed_by))
            self._choose(chosen, wanted_by, package, needed_by)
            queue.extend((d, r, package.id) for d, r in package.dependencies.items())
        return chosen

    @staticmethod
    def _choose(chosen: dict[str, StoredPackage], wanted_by: dict[str, str], package: StoredPackage,
                by: str) -> None:
        other = chosen.get(package.name)
        if other is not None and other.version != package.version:
            raise LibraryNotFound(f"two versions of {package.name} are needed ({other.id} by {wanted_by[package.name]}"
                                  f", {package.id} by {by}); a set of libraries holds one version of each",
                                  name=package.name)
        chosen[package.name] = package
        wanted_by.setdefault(package.name, by)

    @staticmethod
    def _check_fits(package: StoredPackage, wanted: Range, needed_by: str, first: str) -> None:
        if not wanted.test(parse_version(package.version)):
            raise LibraryNotFound(f"two versions of {package.name} are needed ({package.id} by {first}, "
                                  f"{package.name}@{wanted.text!r} by {needed_by}); a set of libraries holds "
                                  "one version of each", name=package.name)

    def verify(self) -> VerifyReport:
        """Re-hash every stored file; what is missing or damaged."""
        damaged: builtins.list[Damage] = []
        packages = self._store.list_packages()
        files = 0
        for package in packages:
            what = package_id(package.name, package.version)
            for f in self._store.package_files(package.name, package.version):
                files += 1
                try:
                    self._blobs.get(f.sha256)
                except BlobMissing:
                    damaged.append(Damage(what, f.path, f.sha256, "missing"))
                except BlobDamaged:
                    damaged.append(Damage(what, f.path, f.sha256, "damaged"))
        if damaged:
            log.warning("packages_damaged", count=len(damaged))
        return VerifyReport(len(packages), files, not damaged, damaged)

    # ----- changing -----

    def remove(self, name: str, version: str) -> bool:
        """Unindex a package and delete the files no other package holds; False if not stored."""
        check_package_name(name)
        check_version(version)
        with self._lock:
            orphans = self._store.remove_package(name, version)
            for key in [k for k in self._trees if k[:2] == (name, version)]:
                del self._trees[key]
            if orphans is None:
                return False
            for digest in orphans:
                self._blobs.delete(digest)
        log.info("package_removed", package=package_id(name, version), blobs_deleted=len(orphans))
        return True

    def add(self, spec: str, with_deps: bool = False) -> builtins.list[StoredPackage]:
        """Fetch, verify and store a package (`name`: its `latest`); with `with_deps`, its
        dependency closure too. The package first, then its dependencies; those already
        stored are not fetched again."""
        wanted = parse_spec(spec)
        top = self._add_one(wanted, None)
        if not with_deps:
            return [top]

        def fetch(name: str, range_text: str, wanted_range: Range, needed_by: str) -> StoredPackage:
            return self._add_one(LibrarySpec(name, None), wanted_range)

        return builtins.list(self._walk([(top, spec)], fetch, MAX_CLOSURE).values())

    def _add_one(self, wanted: LibrarySpec, within: Range | None) -> StoredPackage:
        if wanted.version is not None:
            existing = self.get(wanted.name, wanted.version)
            if existing is not None:
                return existing
        release = self.registry.release(wanted.name, wanted.version, within=within)
        existing = self.get(release.name, release.version)
        if existing is not None:
            return existing
        return self._store_release(release, self.registry.tarball(release))

    def _store_release(self, release: Release, data: bytes) -> StoredPackage:
        what = package_id(release.name, release.version)
        unpacked = unpack(data, release.integrity, what, self._limits)
        check_manifest(unpacked.manifest, release.name, release.version, what)
        written: builtins.list[str] = []
        with self._lock:
            try:
                files = []
                for path, content in sorted(unpacked.files.items()):
                    digest, new = self._blobs.put(content)
                    if new:
                        written.append(digest)
                    files.append(PackageFile(path, digest, len(content)))
                package, added = self._store.add_package(
                    release.name, release.version, integrity=release.integrity,
                    tarball_url=release.tarball_url, manifest=unpacked.manifest, files=files)
            except store_mod.InvalidValue as exc:
                self._forget(written)
                raise PackageRefused(f"{what}: its package.json cannot be stored ({exc})", package=what) from None
            except BaseException:
                self._forget(written)
                raise
        if added:
            log.info("package_added", package=what, files=len(files), bytes=package.unpacked_size)
        return self._stored(package)

    def _forget(self, digests: builtins.list[str]) -> None:
        """Delete the blobs a failed add wrote, unless an indexed package holds them."""
        for digest in digests:
            if not self._store.package_blob_referenced(digest):
                self._blobs.delete(digest)

