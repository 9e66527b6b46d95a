"""Libraries: what a template lists to have in every session's base image, found in the
daemon's package store (`vm-system libs add`) or, failing that, as a file of its library
directory.

A name is looked up in this order:

1. The package store: `lodash@4.17.21`, `@scope/name@1.0.0`, the Go catalog's
   `lodash-4.17.21`, or a bare `lodash` (the highest version stored). A stored package gives
   its session two things: its global build evaluated in the base image (`script_entry`), and
   its name importable (`import _ from "lodash"`, `require("dayjs")`), with the dependencies
   it lists, which must be stored too.
2. The library directory (`serve --library-dir`): `<dir>/<name>.js`, as the Go daemon's
   `.vm-cache/libraries`, evaluated as a script. A name must then be `name@version` or
   `name-version` (letters, digits, `.`, `_`, `-`; no path separators, no `..`).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from supervisor.errors import LibraryNotFound, SupervisorError, ValidationError, WorktreeFileNotFound
from supervisor.imports.resolution import Package, split_path
from supervisor.packages import PackageLibrary, StoredPackage
from supervisor.packages.names import parse_spec
from supervisor.worktree import read_worktree_file

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._]*(@|-)[0-9][A-Za-z0-9._-]*$")
MAX_LIBRARY_BYTES = 4 * 1024 * 1024
# Where a package says its browser (global) build is: CDNs' fields first, then `browser` when
# it is a path (an object there maps files, for bundlers), then `main`.
_SCRIPT_FIELDS = ("jsdelivr", "unpkg", "browser", "main")


@dataclass(frozen=True)
class Library:
    """One library of a template, as a base image evaluates it."""

    name: str  # as the template lists it
    key: str  # what its content is: a package's integrity, a file's sha256
    package: StoredPackage | None = None
    source: str | None = None  # a file library's text


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def check_library_name(name: object) -> str:
    """A name a template may list (a package spec or a library file's name)."""
    if not isinstance(name, str):
        raise ValidationError("library name must be a string", field="name")
    if name != name.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        # Stored as given: a name must be exactly one, not one a spec parser forgives.
        raise ValidationError("library name must not hold blanks at its ends or control characters",
                              name=name[:200])
    try:
        parse_spec(name)
        return name
    except SupervisorError:
        if _FILE_NAME.match(name) and ".." not in name:
            return name
        raise ValidationError("library name must be a package (name@version, @scope/name@version, "
                              "name-version or name) or a library file's name-version",
                              name=name) from None


def script_entry(package: StoredPackage) -> tuple[str, str] | None:
    """(path, text) of the file of `package` to evaluate as a classic script in a base image:
    its global build. A `.min.js` beside the chosen file is preferred (the same code, a
    smaller image for every session). None if the package names no such file."""
    tree = package.tree
    for field in _SCRIPT_FIELDS:
        value = package.manifest.get(field)
        if not isinstance(value, str) or not value.strip():
            continue
        parts = split_path(value.strip().removeprefix("./"))
        if not parts:
            continue
        base = "/".join(parts)
        for candidate in (base, f"{base}.js", f"{base}/index.js"):
            if tree.kind(candidate) == "file" and candidate.endswith((".js", ".cjs")):
                if not candidate.endswith(".min.js"):
                    smaller = f"{candidate.rsplit('.', 1)[0]}.min.js"
                    if tree.kind(smaller) == "file":
                        candidate = smaller
                return candidate, _text(package, candidate)
    if tree.kind("index.js") == "file":
        return "index.js", _text(package, "index.js")
    return None


def _text(package: StoredPackage, path: str) -> str:
    try:
        return package.tree.read(path).decode("utf-8")
    except (FileNotFoundError, UnicodeDecodeError) as exc:
        raise LibraryNotFound(f"library {package.id} is not valid: {path} cannot be read ({exc})",
                              name=package.id) from exc


@dataclass(frozen=True)
class Resolved:
    """A template's libraries, ready for a base image and a session's imports."""

    libraries: list[Library]
    packages: dict[str, Package]  # name → package: the libraries' and their dependencies'

    @property
    def package_ids(self) -> list[str]:
        return [f"{name}@{p.version}" for name, p in sorted(self.packages.items())]


class LibrarySources:
    def __init__(self, packages: PackageLibrary, library_dir: Path | None) -> None:
        self._packages = packages
        self._library_dir = library_dir
        # A library file read (and checked) before, by what its stat said then: a spawn does
        # not read and hash it again unless it changed (or was replaced, by a link or not).
        self._files: dict[str, tuple[tuple[int, int, int, int], Library]] = {}
        self._files_lock = threading.Lock()

    def load(self, name: str) -> Library:
        """The library `name` stands for; LibraryNotFound if neither source has it."""
        check_library_name(name)
        stored: LibraryNotFound | None = None
        try:
            package = self._packages.resolve_library(name)
            return Library(name, package.integrity, package=package)
        except LibraryNotFound as exc:
            stored = exc
        except ValidationError:
            pass
        if self._library_dir is None or not _FILE_NAME.match(name):
            raise stored or LibraryNotFound(f"library {name} not found", name=name)
        path = self._library_dir / f"{name}.js"
        stamp = _stamp(path)  # before the read: a change during it is a miss next time
        known = self._known_file(name, stamp)
        if known is not None:
            return known
        try:
            _, source = read_worktree_file(str(self._library_dir.resolve()), f"{name}.js",
                                           MAX_LIBRARY_BYTES)
        except SupervisorError as exc:  # missing, a symlink out, not UTF-8, too large
            if stored is not None and isinstance(exc, WorktreeFileNotFound):
                raise stored from None  # in neither: the store's message says how to add it
            raise LibraryNotFound(f"library {name} not found or not valid: {exc.message}",
                                  name=name) from exc
        library = Library(name, hashlib.sha256(source.encode()).hexdigest(), source=source)
        if stamp is not None:
            with self._files_lock:
                self._files[name] = (stamp, library)
        return library

    def _known_file(self, name: str, stamp: tuple[int, int, int, int] | None) -> Library | None:
        with self._files_lock:
            known = self._files.get(name)
        if known is None or stamp is None or stamp != known[0]:
            return None
        return known[1]

    def resolve(self, names: Sequence[str]) -> Resolved:
        """The libraries `names` list, with every package they need (LibraryNotFound naming a
        dependency that is not stored)."""
        libraries = [self.load(name) for name in names]
        found: list[str | StoredPackage] = [lib.package for lib in libraries if lib.package is not None]
        closure = self._packages.closure(found) if found else {}
        return Resolved(libraries, {name: Package(p.version, p.tree) for name, p in closure.items()})

    def packages_of(self, ids: Iterable[str]) -> dict[str, Package]:
        """The packages a session was spawned with (`name@version` each), as the store has them
        now; one removed since is left out (its import then fails, naming it)."""
        out: dict[str, Package] = {}
        for package_id in ids:
            try:
                spec = parse_spec(package_id)
            except SupervisorError:
                continue
            found = self._packages.get(spec.name, spec.version) if spec.version else None
            if found is not None:
                out[found.name] = Package(found.version, found.tree)
        return out
