"""Template base images: the guest half of a template's modules and its libraries evaluated
once, cloned into every session.

Sessions spawn by copying a sandbox that already ran them (~0.5 ms), instead of evaluating them
again. The cache key is the enabled modules and the libraries with the sha256 of each file, so
editing a library file, or the template's lists, makes a new base; sessions already running
keep the state they were cloned from. A base exposes placeholder host functions for its
modules (the guest half keeps them); each clone is given its session's own in the same slots.
"""

from __future__ import annotations

import threading
from pathlib import Path

import structlog

from sandbox import Limits, Sandbox
from supervisor.errors import LibraryNotFound
from supervisor.libraries import Library, load_library
from supervisor.modules.grants import SessionGrants, guest_source, placeholder_functions

log = structlog.get_logger("supervisor.base_images")


class BaseImages:
    def __init__(self, library_dir: Path | None, setup_limits: Limits) -> None:
        self._library_dir = library_dir
        self._setup_limits = setup_limits
        self._bases: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], Sandbox] = {}
        # Held while a base is made or cloned: a base sandbox serves one clone at a time.
        self._lock = threading.Lock()

    def sandbox(self, libraries: list[str], limits: Limits, grants: SessionGrants | None = None) -> Sandbox:
        """A new sandbox with the guest half of `grants`' modules and `libraries` already
        evaluated, running under `limits`, offering `grants`' functions and imports.

        It checkpoints after every execution (`auto_checkpoint`, inherited by clones): a
        session rolls back to the state its last execution left, named by that execution's id.

        Raises LibraryNotFound if a library is missing, unreadable or throws when evaluated.
        """
        modules = grants.modules if grants is not None else ()
        loaded = [load_library(self._library_dir, name) for name in libraries]
        key = (modules, tuple((lib.name, lib.sha256) for lib in loaded))
        with self._lock:
            base = self._bases.get(key)
            if base is None:
                base = self._build(modules, loaded)
                self._bases[key] = base
            if grants is None:
                return base.clone(limits)
            sandbox = base.clone(limits, functions=grants.functions(), modules=grants.loader())
        grants.attach(sandbox)
        return sandbox

    def _build(self, modules: tuple[str, ...], loaded: list[Library]) -> Sandbox:
        base = Sandbox(limits=self._setup_limits, auto_checkpoint=True,
                       functions=placeholder_functions(modules))
        out = base.eval(guest_source(modules), filename="vm-system:modules")
        if out.status != "ok":  # the guest half is ours: failing here is a bug, said loudly
            base.close()
            raise RuntimeError(f"the modules' guest half failed: {out.error}")
        for lib in loaded:
            out = base.eval(lib.source, filename=f"library:{lib.name}")
            if out.status != "ok":
                base.close()
                reason = out.error.message if out.error else out.status
                raise LibraryNotFound(f"library {lib.name} is not valid: it failed with "
                                      f"{out.status}: {reason}", name=lib.name)
        base.checkpoint("base")
        log.info("base_image_built", modules=list(modules), libraries=[lib.name for lib in loaded],
                 memory_bytes=base.memory_size())
        return base

    def close(self) -> None:
        with self._lock:
            for base in self._bases.values():
                base.close()
            self._bases.clear()
