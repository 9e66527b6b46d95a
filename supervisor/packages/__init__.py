"""The npm package store: packages fetched from a registry, verified by integrity, unpacked
safely, kept content-addressed in the daemon's data directory and indexed in the store.

    from supervisor.packages import open_package_library
    lib = open_package_library(store, data_dir, registry=None)   # $VM_SYSTEM_NPM_REGISTRY or npm's
    lib.add("lodash@4.17.21")

Modules: names (package names, versions, library specs), semver (versions and ranges),
registry (the HTTP client), tarball (integrity and safe unpacking), manifest (what a
package.json must say), blobs (content-addressed files), tree (a package as a FileTree),
library (the service).
"""

from __future__ import annotations

from pathlib import Path

from store import Store
from supervisor.packages.library import Damage, PackageLibrary, StoredPackage, VerifyReport
from supervisor.packages.names import LibrarySpec, check_package_name, check_version, package_id, parse_spec
from supervisor.packages.registry import DEFAULT_REGISTRY, REGISTRY_ENV, RegistryClient, registry_url
from supervisor.packages.tree import PackageTree


def packages_dir(data_dir: Path) -> Path:
    """Where the blobs live: `<data_dir>/packages/`."""
    return data_dir / "packages"


def open_package_library(store: Store, data_dir: Path, registry: str | None = None) -> PackageLibrary:
    """The package store of a daemon whose data directory is `data_dir`; `registry` (else
    $VM_SYSTEM_NPM_REGISTRY, else npm's) is only reached by `add`."""
    return PackageLibrary(store, packages_dir(data_dir), RegistryClient(registry_url(registry)))


__all__ = ["DEFAULT_REGISTRY", "REGISTRY_ENV", "Damage", "LibrarySpec", "PackageLibrary", "PackageTree",
           "RegistryClient", "StoredPackage", "VerifyReport", "check_package_name", "check_version",
           "open_package_library", "package_id", "packages_dir", "parse_spec", "registry_url"]
