"""The module loader hook: how an `import` in the guest reaches the embedding program.

QuickJS asks the host twice per new module: to resolve a specifier against the module that
imports it, then to load the resolved name's source (it caches what it loaded, per sandbox).
Both questions go to the `ModuleLoader` the sandbox was given; with none, every import is
refused, as it always was. Names under `qjs:` (QuickJS's own std, os and bjson modules) are
refused whatever the loader says, before it is asked.

Whatever the loader refuses, or fails at, is a ReferenceError in the guest naming the
specifier: a `ModuleRefused`'s message is added to it, any other exception only logged.
"""

from __future__ import annotations

from typing import Protocol

from sandbox.log import get_logger

log = get_logger("sandbox.modules")

RESERVED_PREFIXES = ("qjs:",)


class ModuleLoader(Protocol):
    """What `Sandbox(modules=...)` takes."""

    def resolve(self, specifier: str, referrer: str) -> str:
        """The name `specifier`, imported by the module named `referrer`, stands for."""

    def load(self, resolved: str) -> str:
        """The ES module source of a name `resolve` returned."""


class ModuleRefused(Exception):
    """Raised by a loader: the import fails, and this message reaches the guest."""


def resolve_module(loader: ModuleLoader | None, specifier: str, referrer: str) -> tuple[bool, str]:
    """(True, the resolved name) or (False, the guest's error message)."""
    refused = f"could not load module '{specifier}'"
    if loader is None:
        return False, refused
    if specifier.startswith(RESERVED_PREFIXES):
        return False, f"{refused}: not allowed"
    try:
        resolved = loader.resolve(specifier, referrer)
    except ModuleRefused as exc:
        return False, f"{refused}: {exc}"
    except Exception as exc:  # noqa: BLE001 - the loader's failure is never shown to the guest
        log.warning("module_resolve_failed", specifier=specifier, error=repr(exc))
        return False, refused
    if not isinstance(resolved, str) or not resolved or resolved.startswith(RESERVED_PREFIXES):
        return False, f"{refused}: not allowed"
    return True, resolved


def load_module(loader: ModuleLoader | None, name: str) -> tuple[bool, str]:
    """(True, the module's source) or (False, the guest's error message)."""
    refused = f"could not load module '{name}'"
    if loader is None or name.startswith(RESERVED_PREFIXES):
        return False, refused
    try:
        source = loader.load(name)
    except ModuleRefused as exc:
        return False, f"{refused}: {exc}"
    except Exception as exc:  # noqa: BLE001 - as in resolve_module
        log.warning("module_load_failed", module=name, error=repr(exc))
        return False, refused
    if not isinstance(source, str):
        return False, f"{refused}: the loader gave no source text"
    return True, source
