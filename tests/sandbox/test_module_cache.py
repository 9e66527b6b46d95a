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
    before = entries[0].stat()
    content = entries[0].read_bytes()
    past = before.st_mtime - 3600
    os.utime(entries[0], (past, past))
    second = _run(tmp_path)
    assert second.stdout.strip() == "42"
    after = entries[0].stat()
    assert (after.st_ino, entries[0].read_bytes()) == (before.st_ino, content)  # read, not rewritten
    assert after.st_mtime > past + 1800  # marked as used: never pruned while in use


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


def test_writing_an_entry_prunes_the_ones_unused_for_a_month(tmp_path: Path) -> None:
    import time

    from sandbox.module_cache import STALE_AFTER_S

    now = time.time()
    stale = {tmp_path / f"{'0' * 40}.cwasm": now - STALE_AFTER_S - 3600,
             tmp_path / f"pristine-{'0' * 40}.img": now - STALE_AFTER_S - 3600,
             tmp_path / ".tmp-1-1-dead.cwasm": now - 2 * 24 * 3600}
    kept = {tmp_path / f"{'1' * 40}.cwasm": now - 3600,  # another install, still in use
            tmp_path / "notes.txt": now - STALE_AFTER_S - 3600}  # not a cache file
    for path, stamp in {**stale, **kept}.items():
        path.write_bytes(b"old")
        os.utime(path, (stamp, stamp))
    out = _run(tmp_path)  # no entry for this key: compiles, writes, prunes
    assert out.returncode == 0 and out.stdout.strip() == "42", out.stderr
    assert [p.name for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert len(list(tmp_path.glob("*.cwasm"))) == 2  # the other install's and the new one
    assert len(list(tmp_path.glob("pristine-*.img"))) == 1
