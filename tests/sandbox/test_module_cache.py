"""The compiled-module cache: used when valid, rebuilt when corrupt, optional when unwritable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import wasmtime

from sandbox.module_cache import cache_key, load_module

PROBE = (
    "from supervisor.logs import configure_logging; configure_logging(fmt='json'); "
    "from sandbox import Sandbox; print(Sandbox().eval('6*7').value['json'])"
)


def _run(cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VM_SYSTEM_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)


def test_first_process_fills_the_cache_and_the_next_one_uses_it(tmp_path: Path) -> None:
    first = _run(tmp_path)
    assert first.returncode == 0 and first.stdout.strip() == "42", first.stderr
    entries = list(tmp_path.glob("*.cwasm"))
    assert len(entries) == 1
    stamp = entries[0].stat().st_mtime_ns
    second = _run(tmp_path)
    assert second.stdout.strip() == "42"
    assert entries[0].stat().st_mtime_ns == stamp  # read, not rewritten


def test_corrupt_entry_is_rebuilt(tmp_path: Path) -> None:
    assert _run(tmp_path).returncode == 0
    entry = next(tmp_path.glob("*.cwasm"))
    blob = bytearray(entry.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    entry.write_bytes(bytes(blob))
    again = _run(tmp_path)
    assert again.returncode == 0 and again.stdout.strip() == "42", again.stderr
    assert "module_cache_entry_corrupt" in again.stderr
    assert entry.read_bytes() != bytes(blob)  # replaced by a good entry


def test_truncated_entry_is_rebuilt(tmp_path: Path) -> None:
    assert _run(tmp_path).returncode == 0
    entry = next(tmp_path.glob("*.cwasm"))
    entry.write_bytes(entry.read_bytes()[:1000])
    again = _run(tmp_path)
    assert again.returncode == 0 and again.stdout.strip() == "42", again.stderr


def test_unwritable_or_missing_cache_directory_only_costs_time(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("in the way")
    out = _run(blocked / "cache")
    assert out.returncode == 0 and out.stdout.strip() == "42", out.stderr


def test_cache_key_depends_on_guest_and_configuration() -> None:
    base = cache_key("a" * 64, "fuel=1")
    assert cache_key("b" * 64, "fuel=1") != base
    assert cache_key("a" * 64, "fuel=0") != base
    assert cache_key("a" * 64, "fuel=1") == base


def test_an_entry_for_another_engine_configuration_is_not_trusted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VM_SYSTEM_CACHE_DIR", str(tmp_path))
    wasm = wasmtime.wat2wasm("(module (func (export \"f\") (result i32) i32.const 7))")
    plain = wasmtime.Engine()
    load_module(plain, wasm, "k")
    config = wasmtime.Config()
    config.consume_fuel = True
    fuelled = wasmtime.Engine(config)
    # Same key on purpose: wasmtime itself refuses the mismatched artifact, and the loader
    # falls back to compiling instead of failing.
    module = load_module(fuelled, wasm, "k")
    store = wasmtime.Store(fuelled)
    store.set_fuel(1000)
    assert wasmtime.Instance(store, module, []).exports(store)["f"](store) == 7
