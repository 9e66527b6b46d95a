"""Template base images: the guest half of a template's modules and its libraries evaluated
once, cloned into every session.

Sessions spawn by copying a sandbox that already ran them (~0.5 ms), instead of evaluating them
again. The cache key is the enabled modules and the libraries with what identifies their
content (a package's integrity, a file's sha256), so adding another version, editing a library
file, or the template's lists, makes a new base; sessions already running keep the state they
were cloned from. A base exposes placeholder host functions for its modules (the guest half
keeps them); each clone is given its session's own in the same slots.

A stored package is loaded the way a browser page would load it from a CDN, if it can be: its
global build (`libraries.script_entry`) is evaluated as a classic script, tried first in a clone
of the base so that a build that fails, or defines nothing, leaves no trace. What it defines
(lodash's `_`) is then what `require("lodash")` and `import _ from "lodash"` give: the base's
`require` cache is seeded with it, so the library exists once. A package with no global build
(CommonJS or ES modules only) is imported in the base instead, so that every session finds it
in its module cache.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

from sandbox import Limits, Outcome, Sandbox
from supervisor.errors import LibraryNotFound
from supervisor.imports.loader import GUEST_HOOK, ImportLoader
from supervisor.imports.resolution import PACKAGE_PREFIX, ImportRefused, Package, Resolver
from supervisor.imports.tree import EmptyTree
from supervisor.libraries import Library, Resolved, script_entry
from supervisor.modules.grants import (
    REQUIRE_FUNCTION,
    SessionGrants,
    guest_source,
    placeholder_functions,
    require_function,
)
from supervisor.packages import StoredPackage

log = structlog.get_logger("supervisor.base_images")

_GLOBAL_NAMES = "Object.getOwnPropertyNames(globalThis)"


@dataclass
class Base:
    sandbox: Sandbox
    globals: dict[str, list[str]] = field(default_factory=dict)  # package id → what it defined


class BaseImages:
    def __init__(self, setup_limits: Limits) -> None:
        self._setup_limits = setup_limits
        self._bases: dict[tuple[object, ...], Base] = {}
        # Held while a base is made or cloned: a base sandbox serves one clone at a time.
        self._lock = threading.Lock()

    def sandbox(self, resolved: Resolved, limits: Limits, grants: SessionGrants) -> Sandbox:
        """A new sandbox with the guest half of `grants`' modules and the `resolved` libraries
        already evaluated, running under `limits`, offering `grants`' functions and imports.

        It checkpoints after every execution (`auto_checkpoint`, inherited by clones): a
        session rolls back to the state its last execution left, named by that execution's id.

        Raises LibraryNotFound if a library throws when evaluated, or cannot be imported.
        """
        modules = grants.modules
        key = (modules, tuple((lib.name, lib.key) for lib in resolved.libraries),
               tuple(resolved.package_ids))
        with self._lock:
            base = self._bases.get(key)
            if base is None:
                base = self._build(modules, resolved)
                self._bases[key] = base
            sandbox = base.sandbox.clone(limits, functions=grants.functions(), modules=grants.loader())
        grants.attach(sandbox)
        return sandbox

    def _build(self, modules: tuple[str, ...], resolved: Resolved) -> Base:
        sandbox, loader = sandbox_with_packages(resolved.packages, self._setup_limits, modules)
        base = Base(sandbox)
        try:
            for lib in resolved.libraries:
                if lib.package is not None:
                    self._load_package(base, lib.package, loader)
                else:
                    self._load_file(base, lib)
        except BaseException:
            base.sandbox.close()
            raise
        base.sandbox.checkpoint("base")
        log.info("base_image_built", modules=list(modules),
                 libraries=[lib.name for lib in resolved.libraries], globals=base.globals,
                 memory_bytes=base.sandbox.memory_size())
        return base

    @staticmethod
    def _load_file(base: Base, lib: Library) -> None:
        out = base.sandbox.eval(lib.source or "", filename=f"library:{lib.name}")
        if out.status != "ok":
            raise _invalid(lib.name, out)

    def _load_package(self, base: Base, package: StoredPackage, loader: ImportLoader) -> None:
        entry = script_entry(package)
        if entry is not None and self._try_global(base, package, entry, loader):
            return
        # No global build: imported here, kept in the module cache every clone starts with.
        out = base.sandbox.eval_module(f"import * as m from {json.dumps(package.name)};",
                                       filename=f"library:{package.id}")
        if out.status != "ok":
            raise _invalid(package.id, out)

    @staticmethod
    def _try_global(base: Base, package: StoredPackage, entry: tuple[str, str],
                    loader: ImportLoader) -> bool:
        path, text = entry
        probe = base.sandbox.clone()
        try:
            before = _global_names(probe)
            out = probe.eval(text, filename=f"{PACKAGE_PREFIX}{package.id}/{path}")
            added = [n for n in _global_names(probe) if n not in before] if out.status == "ok" else []
            if not added:
                log.info("library_not_global", package=package.id, entry=path, status=out.status)
                probe.close()
                return False
            if len(added) == 1:
                _seed_require(probe, package, added[0], loader)
        except BaseException:
            probe.close()
            raise
        base.sandbox.close()
        base.sandbox = probe
        base.globals[package.id] = added
        return True

    def close(self) -> None:
        with self._lock:
            for base in self._bases.values():
                base.sandbox.close()
            self._bases.clear()


def sandbox_with_packages(packages: Mapping[str, Package], limits: Limits,
                          modules: tuple[str, ...] = ()) -> tuple[Sandbox, ImportLoader]:
    """A new sandbox with the guest half of `modules` evaluated (placeholders for their
    functions) whose `import` and `require` reach `packages` only, and the loader it uses."""
    loader = ImportLoader(Resolver(EmptyTree(), packages=packages, modules=modules))
    functions = placeholder_functions(modules)
    functions[REQUIRE_FUNCTION] = require_function(loader)
    sandbox = Sandbox(limits=limits, auto_checkpoint=True, functions=functions, modules=loader)
    out = sandbox.eval(guest_source(modules), filename="vm-system:modules")
    if out.status != "ok":  # the guest half is ours: failing here is a bug, said loudly
        sandbox.close()
        raise RuntimeError(f"the modules' guest half failed: {out.error}")
    return sandbox, loader


def _global_names(sandbox: Sandbox) -> set[str]:
    out = sandbox.eval(_GLOBAL_NAMES, filename="vm-system:globals")
    names = out.value.get("json") if out.status == "ok" and out.value is not None else None
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def _seed_require(sandbox: Sandbox, package: StoredPackage, name: str, loader: ImportLoader) -> None:
    """`require(package)` (and an import of it, where it resolves to the same file) gives the
    global the build defined, rather than a second copy of the library."""
    try:
        resolved = loader.resolver.resolve(package.name, "", "require")
    except ImportRefused:
        return  # not requirable by its name: the global is all there is
    body = f"module.exports = globalThis[{json.dumps(name)}];"
    out = sandbox.eval(f"{GUEST_HOOK}.define({json.dumps(resolved)}, {json.dumps(body)}); void 0",
                       filename="vm-system:libraries")
    if out.status != "ok":
        raise RuntimeError(f"seeding require({package.name}) failed: {out.error}")


def _invalid(name: str, out: Outcome) -> LibraryNotFound:
    reason = out.error.message if out.error is not None else out.status
    return LibraryNotFound(f"library {name} is not valid: it failed with {out.status}: {reason}", name=name)
