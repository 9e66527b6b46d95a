"""What a stored package's package.json must say: its own name and version, dependencies that
are npm names with semver ranges, and entry points (`main`, `module`, `browser`, `exports`)
that stay inside the package. A package that breaks one of these is refused when it is added,
so resolution never meets an entry point leading out of its package.
"""

from __future__ import annotations

import posixpath
from typing import Any

from supervisor.errors import PackageRefused, SupervisorError
from supervisor.packages.names import check_package_name
from supervisor.packages.semver import parse_range

MAX_DEPENDENCIES = 1000
MAX_EXPORT_TARGETS = 10_000


def _inside(target: str) -> bool:
    """A relative path that, normalised, stays in the package (`./lib/x.js`, `index`)."""
    if not target or target.startswith("/") or "\\" in target or "\0" in target or ":" in target.split("/")[0]:
        return False
    normal = posixpath.normpath(target)
    return normal != ".." and not normal.startswith("../")


def _export_targets(value: Any, found: list[str], depth: int = 0) -> None:
    if depth > 32 or len(found) > MAX_EXPORT_TARGETS:
        raise ValueError("the exports map is nested too deep or too large")
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, list):
        for item in value:
            _export_targets(item, found, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _export_targets(item, found, depth + 1)


def _check_entry_points(manifest: dict[str, Any], what: str) -> None:
    for field in ("main", "module"):
        target = manifest.get(field)
        if target is not None and not isinstance(target, str):
            raise PackageRefused(f"{what}: its package.json {field} is not a string", package=what, field=field)
        if target is not None and not _inside(target):
            raise PackageRefused(f"{what}: its package.json {field} {str(target)[:200]!r} points outside "
                                 "the package", package=what, field=field)
    browser = manifest.get("browser")
    if isinstance(browser, str) and not _inside(browser):
        raise PackageRefused(f"{what}: its package.json browser {browser[:200]!r} points outside the package",
                             package=what, field="browser")
    targets: list[str] = []
    try:
        _export_targets(manifest.get("exports"), targets)
    except ValueError as exc:
        raise PackageRefused(f"{what}: {exc}", package=what, field="exports") from None
    for target in targets:
        # Node requires export targets to start with "./"; a bare name would be another package.
        if not target.startswith("./") or not _inside(target):
            raise PackageRefused(f"{what}: its package.json exports target {target[:200]!r} points "
                                 "outside the package", package=what, field="exports")


def dependencies_of(manifest: dict[str, Any], what: str) -> dict[str, str]:
    """package.json `dependencies` as name → range, each checked."""
    deps = manifest.get("dependencies") or {}
    if not isinstance(deps, dict):
        raise PackageRefused(f"{what}: its package.json dependencies is not an object", package=what)
    if len(deps) > MAX_DEPENDENCIES:
        raise PackageRefused(f"{what}: more than {MAX_DEPENDENCIES} dependencies", package=what)
    out: dict[str, str] = {}
    for name, spec in deps.items():
        try:
            check_package_name(name)
            if not isinstance(spec, str):
                raise PackageRefused(f"{what}: dependency {name!r} has no version range", package=what)
            parse_range(spec)
        except SupervisorError as exc:
            raise PackageRefused(f"{what}: dependency {str(name)[:100]!r} {str(spec)[:100]!r} is not an npm "
                                 f"name with a semver range ({exc.message})", package=what,
                                 dependency=str(name)[:214]) from None
        out[name] = spec
    return out


def check_manifest(manifest: dict[str, Any], name: str, version: str, what: str) -> dict[str, str]:
    """Refuse a package.json that is not this package's or whose entry points lead out; its
    dependencies."""
    if manifest.get("name") != name or manifest.get("version") != version:
        raise PackageRefused(f"{what}: its package.json says {str(manifest.get('name'))[:100]}@"
                             f"{str(manifest.get('version'))[:50]}, not {name}@{version}", package=what)
    _check_entry_points(manifest, what)
    return dependencies_of(manifest, what)
