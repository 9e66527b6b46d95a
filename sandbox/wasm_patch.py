"""Load-time edits of the guest module's bytes.

The QuickJS reactor exports neither its function table nor its stack pointer. The host needs
both: the table to install host functions (console, interrupt handler) whose indices QuickJS
can call, and the stack pointer to move the C shadow stack into a large block with a guard
region below it (see docs/engine.md, "The stack"). The edits are small and structural: add two
exports, drop the table's maximum so it can grow. Everything else is copied byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

WASM_MAGIC = b"\x00asm\x01\x00\x00\x00"

_SECTION_IMPORT = 2
_SECTION_TABLE = 4
_SECTION_GLOBAL = 6
_SECTION_EXPORT = 7

_EXTERN_TABLE = 0x01
_EXTERN_GLOBAL = 0x03

TABLE_EXPORT = "vm_system_table"
STACK_POINTER_EXPORT = "vm_system_stack_pointer"


class WasmPatchError(ValueError):
    """The guest module is not shaped the way the patch expects."""


def _read_uleb(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WasmPatchError("truncated LEB128 integer")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 35:
            raise WasmPatchError("LEB128 integer too long")


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _name(text: str) -> bytes:
    raw = text.encode()
    return _uleb(len(raw)) + raw


@dataclass(frozen=True)
class _Section:
    kind: int
    body: bytes


def _sections(data: bytes) -> list[_Section]:
    if not data.startswith(WASM_MAGIC):
        raise WasmPatchError("not a WebAssembly 1.0 module")
    pos = len(WASM_MAGIC)
    out: list[_Section] = []
    while pos < len(data):
        kind = data[pos]
        size, pos = _read_uleb(data, pos + 1)
        if pos + size > len(data):
            raise WasmPatchError("section runs past the end of the module")
        out.append(_Section(kind, data[pos : pos + size]))
        pos += size
    return out


def _count_imports(body: bytes, extern_kind: int) -> int:
    """How many imports of one kind precede the module's own items in the index space."""
    count, pos = _read_uleb(body, 0)
    found = 0
    for _ in range(count):
        for _field in range(2):  # module name, field name
            length, pos = _read_uleb(body, pos)
            pos += length
        kind = body[pos]
        pos += 1
        if kind == 0x00:  # function: type index
            _, pos = _read_uleb(body, pos)
        elif kind == _EXTERN_TABLE:
            pos += 1
            flags, pos = _read_uleb(body, pos)
            _, pos = _read_uleb(body, pos)
            if flags & 1:
                _, pos = _read_uleb(body, pos)
        elif kind == 0x02:  # memory
            flags, pos = _read_uleb(body, pos)
            _, pos = _read_uleb(body, pos)
            if flags & 1:
                _, pos = _read_uleb(body, pos)
        elif kind == _EXTERN_GLOBAL:
            pos += 2
        else:
            raise WasmPatchError(f"unsupported import kind {kind}")
        if kind == extern_kind:
            found += 1
    return found


def _unbounded_tables(body: bytes) -> bytes:
    count, pos = _read_uleb(body, 0)
    out = bytearray(_uleb(count))
    for _ in range(count):
        reftype = body[pos]
        flags, pos = _read_uleb(body, pos + 1)
        minimum, pos = _read_uleb(body, pos)
        if flags & 1:
            _, pos = _read_uleb(body, pos)
        out += bytes([reftype]) + _uleb(0) + _uleb(minimum)
    if pos != len(body):
        raise WasmPatchError("unexpected bytes after the table section")
    return bytes(out)


def _with_exports(body: bytes, extra: list[tuple[str, int, int]]) -> bytes:
    count, pos = _read_uleb(body, 0)
    existing = body[pos:]
    added = b"".join(_name(name) + bytes([kind]) + _uleb(index) for name, kind, index in extra)
    return _uleb(count + len(extra)) + existing + added


def patch_guest(data: bytes) -> bytes:
    """Return the module with table 0 and global 0 exported and table 0 growable.

    Raises WasmPatchError if the module imports a table or global (then index 0 would not be
    the module's own) or lacks a table section.
    """
    sections = _sections(data)
    kinds = [s.kind for s in sections]
    if _SECTION_TABLE not in kinds or _SECTION_EXPORT not in kinds or _SECTION_GLOBAL not in kinds:
        raise WasmPatchError("the guest has no table, global or export section")
    for section in sections:
        if section.kind == _SECTION_IMPORT and (
            _count_imports(section.body, _EXTERN_TABLE) or _count_imports(section.body, _EXTERN_GLOBAL)
        ):
            raise WasmPatchError("the guest imports a table or a global")
    out = bytearray(WASM_MAGIC)
    for section in sections:
        body = section.body
        if section.kind == _SECTION_TABLE:
            body = _unbounded_tables(body)
        elif section.kind == _SECTION_EXPORT:
            body = _with_exports(
                body, [(TABLE_EXPORT, _EXTERN_TABLE, 0), (STACK_POINTER_EXPORT, _EXTERN_GLOBAL, 0)]
            )
        out += bytes([section.kind]) + _uleb(len(body)) + body
    return bytes(out)


_SECTION_CUSTOM = 0
_SECTION_DATA = 11
_NAME_SUBSECTION_DATA = 9


def _data_segment_names(sections: list[_Section]) -> dict[int, str]:
    for section in sections:
        if section.kind != _SECTION_CUSTOM:
            continue
        length, pos = _read_uleb(section.body, 0)
        if section.body[pos : pos + length] != b"name":
            continue
        body = section.body
        pos += length
        while pos < len(body):
            sub = body[pos]
            size, pos = _read_uleb(body, pos + 1)
            if sub == _NAME_SUBSECTION_DATA:
                names: dict[int, str] = {}
                count, q = _read_uleb(body, pos)
                for _ in range(count):
                    index, q = _read_uleb(body, q)
                    n, q = _read_uleb(body, q)
                    names[index] = body[q : q + n].decode("utf-8", "replace")
                    q += n
                return names
            pos += size
    return {}


def rodata_end(data: bytes) -> int:
    """End address of the guest's `.rodata` segment, or 0 if it cannot be identified.

    Memory below it holds only constants (and the unused first KiB): a fresh instance gets it
    from the module's data segments, so checkpoints need not copy it.
    """
    sections = _sections(data)
    names = _data_segment_names(sections)
    for section in sections:
        if section.kind != _SECTION_DATA:
            continue
        count, pos = _read_uleb(section.body, 0)
        for index in range(count):
            flags, pos = _read_uleb(section.body, pos)
            if flags != 0 or section.body[pos] != 0x41:  # active, offset `i32.const N; end`
                return 0
            offset, pos = _read_uleb(section.body, pos + 1)
            if section.body[pos] != 0x0B:
                return 0
            size, pos = _read_uleb(section.body, pos + 1)
            if names.get(index) == ".rodata" and index == 0:
                return offset + size
            pos += size
    return 0
