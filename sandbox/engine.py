"""The process-wide engine: one wasmtime Engine, compiled guest, linker and epoch ticker.

Everything here is created once per process, on first use, and shared by every sandbox.
"""

from __future__ import annotations

import ctypes
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

# At every tick a running guest's store reaches its epoch deadline and the host checks its
# hard backstops (the interrupt handler is the graceful layer), so a coarse tick is enough and
# costs nothing measurable.
EPOCH_TICK_S = 0.005


@dataclass(frozen=True)
class GuestEngine:
    engine: wasmtime.Engine
    module: wasmtime.Module
    linker: wasmtime.Linker
    guest_sha256: str


def _config() -> tuple[wasmtime.Config, str]:
    config = wasmtime.Config()
    # No fuel: its instrumentation cost ~20% on interpreted loops, and as a CPU backstop it
    # was loose (calibrated for the fastest burn, a tight loop ran 25x its limit before it
    # fired). The epoch deadline callback checks wall and CPU time at every tick instead.
    config.consume_fuel = False
    config.epoch_interruption = True
    config.max_wasm_stack = MAX_WASM_STACK
    # Linear memory never moves when it grows, so the host may keep its base address for the
    # life of an instance instead of asking for it before every access.
    config.memory_may_move = False
    # Part of the cache key: any of these changes the compiled code.
    fingerprint = f"fuel=0;epoch=1;stack={MAX_WASM_STACK};fixed-memory=1"
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
    """Advances the engine's epoch (every store's hard wall-clock deadline counts these ticks)
    and pokes the running guests' interrupt counters (see `running_guest`)."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        super().__init__(name="vm-system-epoch", daemon=True)
        self._engine = engine

    def run(self) -> None:
        while True:
            time.sleep(EPOCH_TICK_S)
            self._engine.increment_epoch()
            if _counters:
                with _counters_lock:
                    for address in _counters:
                        ctypes.c_int32.from_address(address).value = 1


# QuickJS calls the interrupt handler only when its per-context counter runs out, which takes
# about 10,000 interpreted operations. A loop of long native calls ('x'.repeat(1 << 20)) can
# run seconds between two calls. While a guest runs, the ticker sets that counter to 1 every
# tick, so the handler (and with it every graceful limit) is consulted at least every tick.
# The guest may overwrite the poke with its own decrement; the next tick pokes again.
_counters: set[int] = set()
_counters_lock = threading.Lock()


def guest_started(counter_address: int) -> None:
    """Register a running guest's interrupt counter (an absolute host address) for pokes."""
    if counter_address:
        with _counters_lock:
            _counters.add(counter_address)


def guest_stopped(counter_address: int) -> None:
    """Unregister it. Waits for a poke in progress, so once this returns the ticker never
    touches that memory again and the instance may be freed."""
    if counter_address:
        with _counters_lock:
            _counters.discard(counter_address)
