"""The load-time edits of the guest module."""

from __future__ import annotations

import pytest
import wasmtime

from sandbox.guest import guest_rodata_end, patched_guest
from sandbox.wasm_patch import (
    STACK_POINTER_EXPORT,
    TABLE_EXPORT,
    WasmPatchError,
    patch_guest,
    rodata_end,
)

SMALL = """
(module
  (table 2 2 funcref)
  (global (mut i32) (i32.const 1024))
  (memory 1)
  (func $f (result i32) i32.const 5)
  (elem (i32.const 0) $f)
  (export "f" (func $f)))
"""


def test_patch_exports_a_growable_table_and_the_stack_pointer() -> None:
    patched = patch_guest(wasmtime.wat2wasm(SMALL))
    store = wasmtime.Store()
    instance = wasmtime.Instance(store, wasmtime.Module(store.engine, patched), [])
    exports = instance.exports(store)
    table = exports[TABLE_EXPORT]
    assert table.type(store).limits.max is None
    assert table.grow(store, 10, None) == 2
    assert exports[STACK_POINTER_EXPORT].value(store) == 1024
    assert exports["f"](store) == 5


def test_the_guest_patch_keeps_every_original_export() -> None:
    from sandbox.guest import guest_path

    original = wasmtime.Module(wasmtime.Engine(), guest_path().read_bytes())
    patched = wasmtime.Module(wasmtime.Engine(), patched_guest())
    names = {e.name for e in original.exports}
    assert names | {TABLE_EXPORT, STACK_POINTER_EXPORT} == {e.name for e in patched.exports}


@pytest.mark.parametrize("bad", [
    b"", b"\x00asm\x02\x00\x00\x00", b"not wasm at all",
    wasmtime.wat2wasm("(module (func))"),  # no table, global or export section
    wasmtime.wat2wasm('(module (import "m" "t" (table 1 funcref))'
                      ' (global (mut i32) (i32.const 0)) (export "g" (global 0)))'),
])
def test_unexpected_modules_are_refused(bad: bytes) -> None:
    with pytest.raises(WasmPatchError):
        patch_guest(bad)


def test_rodata_is_located_from_the_name_section() -> None:
    end = guest_rodata_end()
    assert 1024 < end < 200_000
    assert rodata_end(wasmtime.wat2wasm(SMALL)) == 0  # no .rodata: nothing is skipped
