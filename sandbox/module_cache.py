"""On-disk cache of the compiled guest.

Compiling the guest takes most of a second; deserialising a cached compilation takes a few
milliseconds. An entry is keyed by everything that changes the machine code (guest hash,
wasmtime version, engine configuration) and carries a sha256 of its payload, so a truncated or
corrupt file is recompiled rather than handed to wasmtime. A missing, unwritable or read-only
cache directory only costs the compile time.

Entries are never updated in place: a new guest, wasmtime version or engine configuration
writes a new one (3-4 MiB) and leaves the old behind. So using an entry refreshes its mtime,
and writing one deletes the directory's entries unused for `STALE_AFTER_S` (another install
sharing the directory that still uses its entry keeps it; one unused for a month recompiles
once if it comes back).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import wasmtime

from sandbox.log import get_logger

log = get_logger("sandbox.module_cache")

CACHE_ENV = "VM_SYSTEM_CACHE_DIR"
STALE_AFTER_S = 30 * 24 * 3600
_TEMPORARY_AFTER_S = 24 * 3600  # a writer that died left it
_CACHE_SUFFIXES = (".cwasm", ".img")
_MAGIC = b"VMSYSMOD1\n"
_DIGEST = 32


def cache_dir() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    import platformdirs  # only needed when no directory is named

    return Path(platformdirs.user_cache_dir("vm-system")) / "modules"


def _entry_path(key: str) -> Path:
    return cache_dir() / f"{key}.cwasm"


def wasmtime_version() -> str:
    # The dist-info folder beside the package names the version; importlib.metadata would
    # cost more to import than a warm start takes.
    site = Path(wasmtime.__file__).resolve().parent.parent
    found = sorted(site.glob("wasmtime-*.dist-info"))
    return found[-1].name[len("wasmtime-") : -len(".dist-info")] if found else "unknown"


def cache_key(guest_sha256: str, config_fingerprint: str) -> str:
    material = f"{guest_sha256}|wasmtime-{wasmtime_version()}|{config_fingerprint}"
    return hashlib.sha256(material.encode()).hexdigest()[:40]


def _read(path: Path) -> bytes | None:
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    head = len(_MAGIC) + _DIGEST
    if len(blob) < head or not blob.startswith(_MAGIC):
        return None
    payload = blob[head:]
    if hashlib.sha256(payload).digest() != blob[len(_MAGIC) : head]:
        return None
    return payload


def _write(path: Path, payload: bytes | bytearray) -> None:
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
            # rename is atomic: a reader sees the old entry or the whole new one, never half
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        log.warning("module_cache_write_failed", path=str(path), error=str(exc))


def mark_used(path: Path) -> None:
    """Note that an entry was used (its mtime): entries in use are never pruned."""
    with contextlib.suppress(OSError):  # a read-only cache directory: nothing is pruned there either
        os.utime(path)


def prune_stale(keep: Path) -> int:
    """Delete the entries of `keep`'s directory unused for STALE_AFTER_S (and temporary files
    a dead writer left), never `keep`; returns how many went. Called after writing `keep`."""
    now = time.time()
    removed = 0
    try:
        entries = list(keep.parent.iterdir())
    except OSError:
        return 0
    for path in entries:
        if path == keep or path.suffix not in _CACHE_SUFFIXES:
            continue
        limit = _TEMPORARY_AFTER_S if path.name.startswith(".tmp-") else STALE_AFTER_S
        try:
            if now - path.stat().st_mtime > limit:
                path.unlink()
                removed += 1
        except OSError:
            continue  # gone already, or not ours to delete
    if removed:
        log.info("cache_entries_pruned", directory=str(keep.parent), removed=removed)
    return removed


def load_module(engine: wasmtime.Engine, wasm: bytes | Callable[[], bytes], key: str) -> wasmtime.Module:
    """The compiled guest, from the cache when a valid entry exists, else compiled and stored.

    `wasm` may be a callable: the bytes are only produced when there is something to compile.
    """
    path = _entry_path(key)
    payload = _read(path)
    if payload is not None:
        try:
            module = wasmtime.Module.deserialize(engine, payload)
            mark_used(path)
            return module
        except wasmtime.WasmtimeError as exc:
            log.warning("module_cache_entry_rejected", path=str(path), error=str(exc))
    elif path.exists():
        log.warning("module_cache_entry_corrupt", path=str(path))
    module = wasmtime.Module(engine, wasm() if callable(wasm) else wasm)
    _write(path, module.serialize())
    prune_stale(path)
    return module
