"""Node's resolution algorithm, inside trees only: what a specifier imported (or required) by a
module names, as one unique resolved name. docs/api.md "Imports" states the rules; in short:

* `node:x` and the catalog's names (`fs`, `database`, `exec`, `fetch`) are the enabled modules
  (`vm:fs`); a catalog module not enabled is refused, any other `node:` name is not found.
* A URL (`file:`, `data:`, `http:`, `qjs:`, any `scheme:`), a NUL, a lone surrogate or a
  specifier over 4,096 characters is refused outright.
* `./x`, `../x`: against the importing file's directory, in the importing file's tree, never
  above its root. `/x`: from the worktree's root, only with `allow_absolute_repo_imports`.
* A bare name: the package of that name (`@scope/name` too), through its `package.json`
  (`exports`, then `module` for an import, `main`, `index.js`), never outside the package; a
  bare name that is no package is looked up under each of the resolver's `roots` in the
  worktree (not from inside a package).
* A path names a file as it is, else with each extension tried in turn, else a directory: its
  `package.json` `main` (`module` first for an import), else its `index` with the extensions.

Resolved names: a worktree file is its path in the worktree (`src/a.js`: what run-file and
stack traces call it), a package file `pkg:<name>@<version>/<path>`, an enabled module `vm:fs`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sandbox import ModuleRefused
from supervisor.imports.tree import FileTree
from supervisor.modules.capabilities import KINDS as CATALOG

Mode = Literal["import", "require"]

MAX_SPECIFIER = 4096
BUILTIN_PREFIX = "vm:"
PACKAGE_PREFIX = "pkg:"
RESERVED_PREFIXES = (BUILTIN_PREFIX, PACKAGE_PREFIX, "qjs:")
# Tried, in this order, after the resolver's own extensions (those not listed already).
ALWAYS_TRIED = (".cjs", ".json")
TYPESCRIPT = (".ts", ".mts", ".cts")
# Inside a package the template's resolver settings do not apply: Node's own order.
PACKAGE_EXTENSIONS = (".js", ".json", ".cjs", ".mjs")
MAX_PACKAGE_JSON_BYTES = 1024 * 1024

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_SURROGATE = re.compile("[\ud800-\udfff]")


class ImportRefused(ModuleRefused):
    """A specifier that resolves to nothing the module may load. `code` is Node's where Node
    has one (`MODULE_NOT_FOUND`, `ERR_PACKAGE_PATH_NOT_EXPORTED`, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(message: str) -> ImportRefused:
    return ImportRefused("MODULE_NOT_FOUND", message)


@dataclass(frozen=True)
class Package:
    """One stored package, as a template's libraries give it: its version and its files."""

    version: str
    tree: FileTree


@dataclass(frozen=True)
class ResolverSettings:
    """A template's `resolver` settings (docs/api.md)."""

    roots: tuple[str, ...] = (".",)
    extensions: tuple[str, ...] = (".js", ".mjs")
    allow_absolute_repo_imports: bool = False

    @classmethod
    def of(cls, settings: Mapping[str, Any] | None) -> ResolverSettings:
        s = settings or {}
        return cls(roots=tuple(s.get("roots", cls.roots)),
                   extensions=tuple(s.get("extensions", cls.extensions)),
                   allow_absolute_repo_imports=bool(s.get("allow_absolute_repo_imports", False)))


@dataclass(frozen=True)
class Location:
    """Where a resolved name's file is: its tree, its path there, its package (if any)."""

    name: str
    tree: FileTree
    path: str
    package: str | None = None  # `name@version` of a package file


def split_path(path: str) -> list[str] | None:
    """The parts of a relative POSIX path once `.` and `..` are applied; None if it climbs
    above where it started."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return parts


def _join(base: str, rest: str) -> str | None:
    parts = split_path(f"{base}/{rest}" if base else rest)
    return None if parts is None else "/".join(parts)


def _dirname(path: str) -> str:
    return path.rpartition("/")[0]


def check_specifier(specifier: Any) -> str:
    if not isinstance(specifier, str):
        raise ImportRefused("ERR_INVALID_ARG_TYPE", "a module specifier must be a string")
    if not specifier:
        raise ImportRefused("ERR_INVALID_ARG_VALUE", "a module specifier must not be empty")
    if len(specifier) > MAX_SPECIFIER:
        raise ImportRefused("ERR_INVALID_ARG_VALUE",
                            f"a module specifier is at most {MAX_SPECIFIER} characters")
    if "\0" in specifier:
        raise ImportRefused("ERR_INVALID_ARG_VALUE", "a module specifier must not contain NUL")
    if _SURROGATE.search(specifier):
        raise ImportRefused("ERR_INVALID_ARG_VALUE",
                            "a module specifier must be Unicode text (it holds a lone surrogate)")
    return specifier


def package_name(specifier: str) -> tuple[str, str] | None:
    """(package name, subpath without its `/`) of a bare specifier; None if it is no valid name."""
    parts = specifier.split("/")
    count = 2 if specifier.startswith("@") else 1
    if len(parts) < count or any(p in ("", ".", "..") for p in parts[:count]):
        return None
    if count == 2 and len(parts[0]) < 2:
        return None
    return "/".join(parts[:count]), "/".join(parts[count:])


class Resolver:
    """Resolution for one session: its worktree, its template's packages, its enabled modules."""

    def __init__(self, worktree: FileTree, *, packages: Mapping[str, Package] | None = None,
                 settings: ResolverSettings | None = None, modules: Sequence[str] = (),
                 typescript: bool = False) -> None:
        self.worktree = worktree
        self.settings = settings or ResolverSettings()
        self.modules = frozenset(modules)
        self.typescript = typescript
        self._packages: dict[str, tuple[str, Package]] = {}  # label -> (name, package)
        self._labels: dict[str, str] = {}  # name -> label
        for name, package in (packages or {}).items():
            if package_name(name) != (name, "") or "/" in package.version or not package.version:
                raise ValueError(f"not a package name and version: {name!r}@{package.version!r}")
            label = f"{name}@{package.version}"
            self._packages[label] = (name, package)
            self._labels[name] = label
        self._manifests: dict[tuple[int, str], dict[str, Any] | None] = {}
        wanted = [*self.settings.extensions, *ALWAYS_TRIED, *(TYPESCRIPT if typescript else ())]
        self.extensions = tuple(dict.fromkeys(wanted))

    # ----- names ------------------------------------------------------------------------------

    def locate(self, name: str) -> Location:
        """The file a resolved name stands for (the inverse of resolve's names)."""
        if name.startswith(PACKAGE_PREFIX):
            rest = name[len(PACKAGE_PREFIX):]
            cut = rest.find("/", rest.find("/") + 1 if rest.startswith("@") else 0)
            label, path = (rest, "") if cut < 0 else (rest[:cut], rest[cut + 1:])
            found = self._packages.get(label)
            if found is None:
                raise not_found(f"no package {label} in this session")
            return Location(name, found[1].tree, path, label)
        if name.startswith(RESERVED_PREFIXES) or split_path(name) is None or name.startswith("/"):
            raise not_found(f"no module named {name}")
        return Location(name, self.worktree, name)

    def _worktree_name(self, path: str) -> str:
        if path.startswith(RESERVED_PREFIXES):
            raise ImportRefused("ERR_ACCESS_DENIED",
                                f"the worktree file {path} has a name reserved for modules")
        return path

    def _origin(self, referrer: str) -> Location:
        """The module a referrer names; anything that is not a file of a tree (`<repl>`,
        `library:x`) imports from the worktree's root."""
        if referrer.startswith(PACKAGE_PREFIX):
            return self.locate(referrer)
        parts = split_path(referrer) if not referrer.startswith(("/", "<")) else None
        return Location(referrer, self.worktree, "/".join(parts) if parts else "")

    # ----- resolve ----------------------------------------------------------------------------

    def resolve(self, specifier: Any, referrer: str, mode: Mode = "import") -> str:
        spec = check_specifier(specifier)
        bare = spec[5:] if spec.startswith("node:") else spec
        if bare in CATALOG:
            if bare in self.modules:
                return BUILTIN_PREFIX + bare
            raise ImportRefused("ERR_MODULE_NOT_ENABLED",
                                f"module '{bare}' is not enabled for this template")
        if spec.startswith("node:"):
            raise not_found(f"'{spec}' is not a module of this runtime (only {', '.join(CATALOG)})")
        if _SCHEME.match(spec):
            raise ImportRefused("ERR_UNSUPPORTED_ESM_URL_SCHEME",
                                f"URL specifiers ({spec.split(':', 1)[0]}:) are not allowed: "
                                "import files by relative path and packages by name")
        origin = self._origin(referrer)
        if spec.startswith("/"):
            if origin.package is not None or not self.settings.allow_absolute_repo_imports:
                raise ImportRefused("ERR_ACCESS_DENIED", "absolute paths are not allowed"
                                    + ("" if origin.package else
                                       " (the template's allow_absolute_repo_imports is off)"))
            inside = _join("", spec.lstrip("/"))
            if inside is None:
                raise ImportRefused("ERR_ACCESS_DENIED", f"'{spec}' leads out of the worktree")
            return self._path(self.worktree, None, inside, spec, mode,
                              directory=spec.endswith("/") or not inside)
        if spec in (".", "..") or spec.startswith(("./", "../")):
            joined = _join(_dirname(origin.path), spec)
            if joined is None:
                where = f"package {origin.package}" if origin.package else "worktree"
                raise ImportRefused("ERR_ACCESS_DENIED", f"'{spec}' leads out of the {where}")
            trailing = spec.endswith("/") or spec in (".", "..") or spec.endswith("/.")
            return self._path(origin.tree, origin.package, joined, spec, mode, directory=trailing)
        return self._bare(spec, origin, mode)

    def _path(self, tree: FileTree, package: str | None, path: str, spec: str, mode: Mode, *,
              directory: bool = False) -> str:
        exts = PACKAGE_EXTENSIONS if package is not None else self.extensions
        found = self._directory(tree, path, exts, mode) if directory else \
            self._file_or_directory(tree, path, exts, mode)
        if found is None:
            raise not_found(f"Cannot find module '{spec}'")
        return self._name(package, found)

    def _name(self, package: str | None, path: str) -> str:
        if package is not None:
            return f"{PACKAGE_PREFIX}{package}/{path}"
        return self._worktree_name(path)

    def _file_or_directory(self, tree: FileTree, path: str, exts: Sequence[str],
                           mode: Mode) -> str | None:
        found = self._file(tree, path, exts)
        return found if found is not None else self._directory(tree, path, exts, mode)

    @staticmethod
    def _file(tree: FileTree, path: str, exts: Sequence[str]) -> str | None:
        if path and tree.kind(path) == "file":
            return path
        if path and not path.endswith("/"):
            for ext in exts:
                if tree.kind(path + ext) == "file":
                    return path + ext
        return None

    def _directory(self, tree: FileTree, path: str, exts: Sequence[str], mode: Mode) -> str | None:
        if tree.kind(path) != "dir":
            return None
        manifest = self._manifest(tree, path)
        if manifest is not None:
            for field in ("module", "main") if mode == "import" else ("main",):
                target = manifest.get(field)
                if isinstance(target, str) and target:
                    # An absolute main names a host path in Node: it leads out, as `..` does.
                    inside = None if target.startswith("/") else _join(path, target)
                    if inside is None:
                        raise ImportRefused("ERR_INVALID_PACKAGE_TARGET",
                                            f"the {field} of {path or '.'}/package.json "
                                            f"({target}) leads out of its tree")
                    found = self._file(tree, inside, exts) or self._index(tree, inside, exts)
                    if found is not None:
                        return found
        return self._index(tree, path, exts)

    @staticmethod
    def _index(tree: FileTree, path: str, exts: Sequence[str]) -> str | None:
        base = f"{path}/index" if path else "index"
        for ext in exts:
            if tree.kind(base + ext) == "file":
                return base + ext
        return None

    def manifest_type(self, tree: FileTree, path: str) -> str | None:
        """The `type` of the nearest package.json above a file, within its tree."""
        directory = _dirname(path)
        while True:
            manifest = self._manifest(tree, directory)
            if manifest is not None:
                kind = manifest.get("type")
                return kind if kind in ("module", "commonjs") else None
            if not directory:
                return None
            directory = _dirname(directory)

    def _manifest(self, tree: FileTree, directory: str) -> dict[str, Any] | None:
        key = (id(tree), directory)
        if key in self._manifests:
            return self._manifests[key]
        where = f"{directory}/package.json" if directory else "package.json"
        manifest: dict[str, Any] | None = None
        if tree.kind(where) == "file":
            try:
                raw = tree.read(where)
            except OSError:
                raw = b""
            if len(raw) > MAX_PACKAGE_JSON_BYTES:
                raise ImportRefused("ERR_INVALID_PACKAGE_CONFIG", f"{where} is too large")
            try:
                parsed = json.loads(raw.decode("utf-8")) if raw else {}
            except (UnicodeDecodeError, ValueError):
                raise ImportRefused("ERR_INVALID_PACKAGE_CONFIG", f"{where} is not valid JSON") from None
            except RecursionError:  # json's C scanner gives up near 1,000 levels, not a ValueError
                raise ImportRefused("ERR_INVALID_PACKAGE_CONFIG", f"{where} is nested too deep") from None
            manifest = parsed if isinstance(parsed, dict) else {}
        self._manifests[key] = manifest
        return manifest

    # ----- packages ---------------------------------------------------------------------------

    def _bare(self, spec: str, origin: Location, mode: Mode) -> str:
        named = package_name(spec)
        if named is None:
            raise not_found(f"Cannot find module '{spec}'")
        name, subpath = named
        label = self._labels.get(name)
        if label is not None:
            return self._in_package(label, subpath, spec, mode)
        if origin.package is None:
            for root in self.settings.roots:
                path = _join(root if root != "." else "", spec)
                if path is None:
                    continue
                found = self._file_or_directory(self.worktree, path, self.extensions, mode)
                if found is not None:
                    return self._worktree_name(found)
            raise not_found(f"Cannot find module '{spec}'")
        raise not_found(f"Cannot find module '{spec}': package '{name}' (required by "
                        f"{origin.package}) is not among this session's packages")

    def _in_package(self, label: str, subpath: str, spec: str, mode: Mode) -> str:
        tree = self._packages[label][1].tree
        manifest = self._manifest(tree, "") or {}
        exports = manifest.get("exports")
        if exports is not None:
            # As Node: `*` must not carry `..` (nor `.`, nor an empty part) into a target, or
            # `pkg/lib/../secret` would reach a file `exports` keeps private.
            if subpath and any(part in ("", ".", "..") for part in subpath.split("/")):
                raise ImportRefused("ERR_PACKAGE_PATH_NOT_EXPORTED",
                                    f"'{spec}' is not exported by package {label} (a subpath has no "
                                    "empty, '.' or '..' parts)")
            target = _exports_target(exports, "." if not subpath else f"./{subpath}", mode)
            if target is None:
                raise ImportRefused("ERR_PACKAGE_PATH_NOT_EXPORTED",
                                    f"'{spec}' is not exported by package {label}")
            path = _join("", target) if target.startswith("./") else None
            if path is None or not path:
                raise ImportRefused("ERR_INVALID_PACKAGE_TARGET",
                                    f"package {label} exports '{spec}' as {target}, outside it")
            if tree.kind(path) != "file":
                raise not_found(f"Cannot find module '{spec}': package {label} exports it as "
                                f"{target}, which it does not hold")
            return self._name(label, path)
        if subpath:
            path = _join("", subpath)
            if path is None:
                raise ImportRefused("ERR_ACCESS_DENIED", f"'{spec}' leads out of package {label}")
            return self._path(tree, label, path, spec, mode)
        found = self._directory(tree, "", PACKAGE_EXTENSIONS, mode)
        if found is None:
            raise not_found(f"Cannot find module '{spec}': package {label} has no main file")
        return self._name(label, found)


def _conditions(mode: Mode) -> tuple[str, ...]:
    return ("import" if mode == "import" else "require", "browser", "default")


def _exports_target(exports: Any, subpath: str, mode: Mode) -> str | None:
    """The target `exports` gives `subpath` (`.` or `./x`), or None if it exports nothing there."""
    if isinstance(exports, (str, list)) or (
            isinstance(exports, dict) and exports and not any(str(k).startswith(".") for k in exports)):
        return _target(exports, mode, None) if subpath == "." else None
    if not isinstance(exports, dict):
        return None
    if subpath in exports and "*" not in subpath:
        return _target(exports[subpath], mode, None)
    best: tuple[str, str] | None = None  # (key, what its * matched)
    for key in exports:
        if not isinstance(key, str) or key.count("*") != 1:
            continue
        head, tail = key.split("*")
        matches = subpath.startswith(head) and subpath.endswith(tail) and len(subpath) >= len(key) - 1
        if matches and (best is None or len(head) > len(best[0].split("*")[0])):
            best = (key, subpath[len(head):len(subpath) - len(tail)])
    if best is None:
        return None
    return _target(exports[best[0]], mode, best[1])


def _target(value: Any, mode: Mode, star: str | None) -> str | None:
    if isinstance(value, str):
        if star is not None:
            value = value.replace("*", star)
        return value
    if isinstance(value, list):
        for item in value:
            found = _target(item, mode, star)
            if found is not None:
                return found
        return None
    if isinstance(value, dict):
        wanted = _conditions(mode)
        for key, inner in value.items():
            if key in wanted:
                found = _target(inner, mode, star)
                if found is not None:
                    return found
    return None
