"""npm package names, exact versions, and the library specs templates and `libs` commands take.

A name follows npm's rules for new packages: at most 214 characters, lowercase, URL-safe
(letters, digits, `-`, `.`, `_`), not starting with `.` or `_`, optionally scoped
(`@scope/name`). Such a name can never be a path: it is only ever a registry URL segment and
an index key, never joined into a file path (stored files are content-addressed).

A spec is `name`, `name@1.2.3`, `@scope/name@1.2.3`, or the Go catalog's `name-1.2.3`
(`lodash-4.17.21` is lodash@4.17.21), so that Go users' templates keep working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from supervisor.errors import ValidationError
from supervisor.packages.semver import parse_version

MAX_NAME_LENGTH = 214
_PART = r"[a-z0-9-][a-z0-9._-]*"
_NAME = re.compile(rf"^(?:@{_PART}/)?{_PART}$")
# The Go catalog's form: a name, a dash, an exact version (prerelease allowed).
_GO_FORM = re.compile(r"^(?P<name>[a-z0-9-][a-z0-9._-]*?)-(?P<version>\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$")
_RESERVED = frozenset({"node_modules", "favicon.ico"})


@dataclass(frozen=True)
class LibrarySpec:
    name: str
    version: str | None  # exact; None: the registry's `latest`, or the highest stored

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


def check_package_name(name: object) -> str:
    """`name` if it is a valid npm package name; else ValidationError saying which rule fails."""
    if not isinstance(name, str) or name == "":
        raise ValidationError("a package name must be a non-empty string", name=str(name)[:256])
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"a package name is at most {MAX_NAME_LENGTH} characters",
                              name=name[:256])
    if name != name.lower():
        raise ValidationError(f"package name {name!r} must be lowercase", name=name)
    if not _NAME.match(name) or name.split("/")[-1] in _RESERVED:
        raise ValidationError(f"{name!r} is not a valid npm package name (lowercase letters, "
                              "digits, '-', '.', '_', not starting with '.' or '_'; "
                              "optionally @scope/name)", name=name[:256])
    return name


def check_version(version: object) -> str:
    """An exact semver version, as written (`1.2.3`, `1.0.0-beta.1`); else ValidationError."""
    if not isinstance(version, str):
        raise ValidationError("a version must be a string like 1.2.3", version=str(version)[:256])
    parse_version(version)
    return version.removeprefix("v")


def parse_spec(spec: object) -> LibrarySpec:
    """`name[@version]`, `@scope/name[@version]` or `name-version` (the Go catalog's form)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValidationError("a library spec must be a non-empty string like lodash@4.17.21",
                              spec=str(spec)[:256])
    text = spec.strip()
    scoped = text.startswith("@")
    body = text[1:] if scoped else text
    name, at, version = body.rpartition("@") if "@" in body else (body, "", "")
    if at:
        if not version:
            raise ValidationError(f"library spec {text!r}: a version after '@' is required",
                                  spec=text[:256])
        return LibrarySpec(check_package_name(("@" if scoped else "") + name), check_version(version))
    go = _GO_FORM.match(body) if "/" not in body else None
    if go is not None:
        return LibrarySpec(check_package_name(go["name"]), check_version(go["version"]))
    return LibrarySpec(check_package_name(text), None)


def package_id(name: str, version: str) -> str:
    return f"{name}@{version}"
