"""The process-wide engine: one wasmtime Engine, compiled guest, linker and epoch ticker.

Everything here is created once per process, on first use, and shared by every sandbox.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import cache

import wasmtime

from sandbox.errors import EngineUnavailable
from sandbox.guest import guest_sha256, patched_guest
from sandbox.module_cache import cache_key, load_module

# Never above 2 MiB: wasmtime-py's engine panics and aborts the process ("max_wasm_stack size
# cannot exceed the async_stack_size").
MAX_WASM_STACK = 2 * 1024 * 1024

# The epoch deadline is the wall-clock backstop only (the interrupt handler is the graceful
# layer), so a coarse tick is enough and costs nothing measurable.
EPOCH_TICK_S = 0.005


@dataclass(frozen=True)
class GuestEngine:
    engine: wasmtime.Engine
    module: wasmtime.Module
    linker: wasmtime.Linker
    guest_sha256: str


def _config() -> tuple[wasmtime.Config, str]:
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.max_wasm_stack = MAX_WASM_STACK
    # Linear memory never moves when it grows, so the host may keep its base address for the
    # life of an instance instead of asking for it before every access.
    config.memory_may_move = False
    # Part of the cache key: any of these changes the compiled code.
    fingerprint = f"fuel=1;epoch=1;stack={MAX_WASM_STACK};fixed-memory=1"
    return config, fingerprint


_lock = threading.Lock()


@cache
def _build() -> GuestEngine:
    config, fingerprint = _config()
    engine = wasmtime.Engine(config)
    try:
        module = load_module(engine, patched_guest, cache_key(guest_sha256(), fingerprint))
    except wasmtime.WasmtimeError as exc:
        raise EngineUnavailable(f"the guest module does not compile: {exc}") from exc
    linker = wasmtime.Linker(engine)
    # The guest's only imports are WASI functions. The store's WasiConfig grants nothing: no
    # preopened directory, no environment, no arguments, no stdio.
    linker.define_wasi()
    _EpochTicker(engine).start()
    return GuestEngine(engine, module, linker, guest_sha256())


def guest_engine() -> GuestEngine:
    with _lock:
        return _build()


class _EpochTicker(threading.Thread):
    """Advances the engine's epoch; every store's hard wall-clock deadline counts these ticks."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        super().__init__(name="vm-system-epoch", daemon=True)
        self._engine = engine

    def run(self) -> None:
        while True:
            time.sleep(EPOCH_TICK_S)
            self._engine.increment_epoch()
