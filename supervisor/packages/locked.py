"""Packages the daemon itself runs (the TypeScript transpiler), pinned by integrity.

Each is fetched from the registry once, checked against the integrity the code pins (before
the registry's own metadata is believed: a registry that serves anything else for that name
and version is refused), and its tarball kept in a cache directory. Every load unpacks the
cached tarball again through the same integrity check, so a cache file changed on disk is
refused, not run. These packages are not in the package store: they are the daemon's own,
like its Python dependencies, and are not something a template lists or `libs remove` drops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from supervisor.cache_files import keep
from supervisor.errors import IntegrityMismatch, PackageRefused
from supervisor.imports.tree import MemoryTree
from supervisor.packages.names import package_id
from supervisor.packages.registry import RegistryClient
from supervisor.packages.tarball import unpack

log = structlog.get_logger("supervisor.packages.locked")


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    integrity: str  # the SRI sha512 the registry published for this exact version

    @property
    def id(self) -> str:
        return package_id(self.name, self.version)


def _cache_file(cache_dir: Path, package: LockedPackage) -> Path:
    return cache_dir / f"{package.name.replace('/', '+')}-{package.version}.tgz"


def load_locked(packages: Sequence[LockedPackage], cache_dir: Path,
                registry: RegistryClient) -> dict[str, tuple[str, MemoryTree]]:
    """name → (version, files) of every package, from the cache or else the registry."""
    out: dict[str, tuple[str, MemoryTree]] = {}
    for package in packages:
        path = _cache_file(cache_dir, package)
        unpacked = None
        try:
            unpacked = unpack(path.read_bytes(), package.integrity, package.id)
        except OSError:
            pass  # not cached yet
        except (IntegrityMismatch, PackageRefused):
            log.warning("locked_cache_refused", package=package.id, path=str(path))
        if unpacked is None:
            data = _fetch(package, registry)
            unpacked = unpack(data, package.integrity, package.id)
            keep(_cache_file(cache_dir, package), data)  # else fetched again next time
        out[package.name] = (package.version, MemoryTree(unpacked.files))
    return out


def _fetch(package: LockedPackage, registry: RegistryClient) -> bytes:
    release = registry.release(package.name, package.version)
    if release.integrity.split() and package.integrity not in release.integrity.split():
        raise IntegrityMismatch(f"{package.id}: the registry {registry.base_url} publishes another "
                                "integrity than the one vm-system pins; refused", package=package.id)
    data = registry.tarball(release)
    log.info("locked_package_fetched", package=package.id, bytes=len(data))
    return data
