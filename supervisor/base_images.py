"""Template base images: a template's libraries evaluated once, cloned into every session.

Sessions of a template with libraries spawn by copying a sandbox that already ran them
(~0.5 ms), instead of evaluating the libraries again. The cache key is the list of libraries
with the sha256 of each file, so editing a library file, or the template's list, makes a new
base; sessions already running keep the state they were cloned from.
"""

from __future__ import annotations

import threading
from pathlib import Path

import structlog

from sandbox import Limits, Sandbox
from supervisor.errors import LibraryNotFound
from supervisor.libraries import load_library

log = structlog.get_logger("supervisor.base_images")


class BaseImages:
    def __init__(self, library_dir: Path | None, setup_limits: Limits) -> None:
        self._library_dir = library_dir
        self._setup_limits = setup_limits
        self._bases: dict[tuple[tuple[str, str], ...], Sandbox] = {}
        # Held while a base is made or cloned: a base sandbox serves one clone at a time.
        self._lock = threading.Lock()

    def sandbox(self, libraries: list[str], limits: Limits) -> Sandbox:
        """A new sandbox with `libraries` already evaluated, running under `limits`.

        It checkpoints after every execution (`auto_checkpoint`, inherited by clones): a
        session rolls back to the state its last execution left, named by that execution's id.

        Raises LibraryNotFound if a library is missing, unreadable or throws when evaluated.
        """
        if not libraries:
            return Sandbox(limits=limits, auto_checkpoint=True)
        loaded = [load_library(self._library_dir, name) for name in libraries]
        key = tuple((lib.name, lib.sha256) for lib in loaded)
        with self._lock:
            base = self._bases.get(key)
            if base is None:
                base = Sandbox(limits=self._setup_limits, auto_checkpoint=True)
                for lib in loaded:
                    out = base.eval(lib.source, filename=f"library:{lib.name}")
                    if out.status != "ok":
                        base.close()
                        reason = out.error.message if out.error else out.status
                        raise LibraryNotFound(f"library {lib.name} is not valid: it failed with "
                                              f"{out.status}: {reason}", name=lib.name)
                base.checkpoint("base")
                self._bases[key] = base
                log.info("base_image_built", libraries=[lib.name for lib in loaded],
                         memory_bytes=base.memory_size())
            return base.clone(limits)

    def close(self) -> None:
        with self._lock:
            for base in self._bases.values():
                base.close()
            self._bases.clear()
