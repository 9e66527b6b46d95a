"""Sandbox images: a checkpoint serialised so it can be stored, copied or sent elsewhere.

Layout: MAGIC | u32 header length | header (JSON) | zlib(memory) | HMAC-SHA256.
The HMAC covers everything before it and is keyed by the installation key bound to a
context (for the supervisor, the session id), so an image cannot be tampered with, truncated,
or moved to another session or installation without detection. Nothing is decompressed or
written into guest memory before the HMAC and then every header field check out: the MAC only
says who made an image, so a header is also held to what this engine could have written
(types, ranges, the guest module's own layout; see `_check_header`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import wasmtime

from sandbox.errors import ImageError
from sandbox.guest import guest_bytes, guest_rodata_end
from sandbox.guest_setup import HELPERS
from sandbox.memory_layout import OLD_STACK, PAGE, SOURCE_BUFFER, STACK_BLOCK, Layout, MemoryImage
from sandbox.quickjs_abi import TAG_OBJECT
from sandbox.wasm_patch import _SECTION_GLOBAL, _read_uleb, _sections

MAGIC = b"VMSYSIMG"
# 2: the layout records the interrupt counter. 3: the runtime calls a third host function (the
# promise rejection tracker); a version-2 image restores as it was, without that tracking.
# 4: a fifth helper (the event loop's `turn`) and a fourth host function (the host bridge); an
# older image restores as it was, without timers or host functions.
# 5: the host bridge's answers changed (small integers and booleans cross as values, a timer's
# turn has no text). Format 4 was written only by development builds before that change, and
# its guest would misread the answers: it is refused, by name.
FORMAT_VERSION = 5
READABLE_VERSIONS = (2, 3, 5)
_RETIRED_VERSIONS = {4: "it was written by a development build whose host bridge spoke another protocol"}
_MAC = 32
KEY_ENV = "VM_SYSTEM_IMAGE_KEY_FILE"
# wasm32 addresses 65536 pages; the last is refused so every address and end fits in a u32.
_MAX_MEMORY = 2**32 - PAGE


def default_key_path() -> Path:
    override = os.environ.get(KEY_ENV)
    if override:
        return Path(override)
    import platformdirs  # only needed when no key file is named

    return Path(platformdirs.user_data_dir("vm-system")) / "image.key"


def installation_key(path: Path | None = None) -> bytes:
    """The per-installation image key, created (0600) on first use."""
    path = path or default_key_path()
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
    return key


def _mac(key: bytes, context: str, body: bytes) -> bytes:
    derived = hmac.new(key, b"vm-system image\0" + context.encode(), hashlib.sha256).digest()
    return hmac.new(derived, body, hashlib.sha256).digest()


def encode_image(image: MemoryImage, guest_sha256: str, key: bytes, context: str = "") -> bytes:
    header = json.dumps({
        "format_version": FORMAT_VERSION,
        "guest_sha256": guest_sha256,
        "memory_size": image.size,
        "stored_bytes": len(image.data),
        "stack_pointer": image.stack_pointer,
        "layout": image.layout.to_json(),
    }, sort_keys=True).encode()
    body = MAGIC + struct.pack("<I", len(header)) + header + zlib.compress(image.data, 1)
    return body + _mac(key, context, body)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two readers of one header (display and restore) must never see different values.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ImageError(f"the image header repeats the field {_shown(key)}")
        out[key] = value
    return out


def _parse_header(raw: bytes) -> Any:
    try:
        return json.loads(raw, object_pairs_hook=_refuse_duplicates)
    except RecursionError as exc:  # a deeply nested header is not a ValueError
        raise ImageError("the image header is nested too deeply") from exc
    except ValueError as exc:
        raise ImageError("the image header is not readable") from exc


def image_header(data: bytes) -> dict:
    """The header of an image, unauthenticated: for display only, never for restoring."""
    if len(data) < len(MAGIC) + 4 or not data.startswith(MAGIC):
        raise ImageError("not a vm-system image")
    (size,) = struct.unpack_from("<I", data, len(MAGIC))
    header = _parse_header(data[len(MAGIC) + 4 : len(MAGIC) + 4 + size])
    if not isinstance(header, dict):
        raise ImageError("the image header is not a JSON object")
    return header


@dataclass(frozen=True)
class GuestFacts:
    """What the guest module itself fixes about every image made with it."""

    rodata_end: int  # what Layout.rodata_end is in every instance of this module
    old_stack_top: int  # the module's initial __stack_pointer: the old stack ends there
    table_base: int  # table 0's initial size: where the host functions are installed
    min_memory: int  # the module's initial memory: an instance never has less


@cache
def guest_facts() -> GuestFacts:
    # Imported here: image.py is imported by code that never needs the compiled module.
    from sandbox.engine import guest_engine
    from sandbox.wasm_patch import TABLE_EXPORT

    table_min = memory_min = None
    for export in guest_engine().module.exports:
        if export.name == TABLE_EXPORT and isinstance(export.type, wasmtime.TableType):
            table_min = export.type.limits.min
        elif export.name == "memory" and isinstance(export.type, wasmtime.MemoryType):
            memory_min = export.type.limits.min
    if table_min is None or memory_min is None:
        raise ImageError("the guest module does not export its table and memory")
    return GuestFacts(guest_rodata_end(), _initial_stack_pointer(guest_bytes()), table_min,
                      memory_min * PAGE)


def _initial_stack_pointer(module: bytes) -> int:
    """The init value of global 0 (`__stack_pointer`; wasm_patch guarantees it is not imported)."""
    try:
        for section in _sections(module):
            if section.kind != _SECTION_GLOBAL:
                continue
            body = section.body
            count, pos = _read_uleb(body, 0)
            # valtype i32, then the init expression `i32.const N; end`
            if count and body[pos] == 0x7F and body[pos + 2] == 0x41:
                value, pos = _read_sleb(body, pos + 3)
                if body[pos] == 0x0B:
                    return value & 0xFFFFFFFF
    except (IndexError, ValueError) as exc:
        raise ImageError("the guest's global section cannot be read") from exc
    raise ImageError("the guest's initial stack pointer cannot be found")


def _read_sleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while shift < 35:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if byte & 0x40:
                result -= 1 << shift
            return result, pos
    raise ImageError("the guest's initial stack pointer is not a 32-bit constant")


_HEADER_FIELDS = frozenset({"format_version", "guest_sha256", "memory_size", "stored_bytes",
                            "stack_pointer", "layout"})
_LAYOUT_FIELDS = frozenset(Layout.__dataclass_fields__)
# Bytes the host itself reads or writes at these layout addresses (their allocations in
# GuestInstance._initialise): scratch holds out-parameters and the uncatchable error's message.
_SCRATCH_BYTES = 16
_FILENAME_BYTES = 16
# The interrupt counter is a field of the JSContext found among its first 512 words.
_CTX_SCAN_BYTES = 512 * 4
_MALLOC_ALIGN = 8
_STACK_ALIGN = 16


def _shown(value: Any) -> str:
    # Error messages reach logs and API clients: a hostile value is shown, never at length.
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _whole(value: Any, what: str, low: int, high: int) -> int:
    """`value` as an int in [low, high]; bool, float, str and the rest refused."""
    if type(value) is not int:  # bool is an int subclass: True is no address
        raise ImageError(f"the image header's {what} is not an integer")
    if not low <= value <= high:
        raise ImageError(f"the image header's {what} ({_shown(value)}) is out of range")
    return value


def _check_layout(raw: Any, size: int, facts: GuestFacts, helper_count: int) -> Layout:
    """A Layout from an image header's fields, or ImageError if any of them is not what the
    engine could have made for this guest in a memory of `size` bytes."""
    if not isinstance(raw, dict):
        raise ImageError("the image's layout is not a JSON object")
    if raw.keys() != _LAYOUT_FIELDS:
        missing, extra = sorted(_LAYOUT_FIELDS - raw.keys()), sorted(raw.keys() - _LAYOUT_FIELDS)
        raise ImageError(f"the image's layout has missing fields {missing}, unknown fields {_shown(extra)}")
    ints = {k: _whole(raw[k], f"layout.{k}", 0, size) for k in _LAYOUT_FIELDS if k != "helpers"}
    lay = Layout(**ints, helpers=(0, 0, 0, 0))

    if lay.rodata_end != facts.rodata_end:
        raise ImageError("the image's constant memory does not end where this guest's does")
    if lay.old_stack_lo + OLD_STACK != facts.old_stack_top or lay.rodata_end > lay.old_stack_lo:
        raise ImageError("the image's old stack is not where this guest's is")
    # The block is the allocation right above the old stack, its guard at the bottom.
    if (lay.stack_lo % _STACK_ALIGN or lay.stack_lo < facts.old_stack_top
            or lay.stack_hi != lay.stack_lo + STACK_BLOCK or lay.stack_hi > size):
        raise ImageError("the image's stack block is not one the engine makes")
    if lay.table_base != facts.table_base:
        raise ImageError("the image expects its host functions at other table slots")

    heap_lo = lay.stack_hi
    buffers = {"scratch": _SCRATCH_BYTES, "filename": _FILENAME_BYTES, "source": SOURCE_BUFFER}
    for name in ("rt", "ctx", *buffers):
        at = ints[name]
        if at < heap_lo or at % _MALLOC_ALIGN or at + buffers.get(name, 1) > size:
            raise ImageError(f"the image's {name} is not an address in its heap")
    spans = sorted((ints[name], ints[name] + length) for name, length in buffers.items())
    if any(a_end > b_lo for (_, a_end), (b_lo, _) in zip(spans, spans[1:], strict=False)):
        raise ImageError("the image's host buffers overlap")
    if lay.rt == lay.ctx or any(lo <= ints[p] < hi for p in ("rt", "ctx") for lo, hi in spans):
        raise ImageError("the image's runtime or context overlaps a host buffer")
    counter = lay.interrupt_counter
    if counter and (counter % 4 or not lay.ctx <= counter < lay.ctx + _CTX_SCAN_BYTES
                    or counter + 4 > size):
        raise ImageError("the image's interrupt counter is not a field of its context")

    helpers = raw["helpers"]
    if not isinstance(helpers, list) or len(helpers) != helper_count:
        raise ImageError(f"the image's helpers are not a list of {helper_count} values")
    for i, value in enumerate(helpers):
        # Each helper is a JSValue of a function object: tag -1, pointer in the heap.
        _whole(value, f"layout.helpers[{i}]", -(2**63), 2**63 - 1)
        pointer = value & 0xFFFFFFFF
        if value >> 32 != TAG_OBJECT or pointer < heap_lo or pointer >= size or pointer % _MALLOC_ALIGN:
            raise ImageError(f"the image's helper {i} is not an object in its heap")
    # An older image's guest has no event loop helper: 0 says so (see Layout.helpers).
    return Layout(**ints, helpers=tuple(helpers) + (0,) * (HELPERS - helper_count))


@dataclass(frozen=True)
class _Header:
    size: int
    stored: int
    stack_pointer: int
    layout: Layout


def _check_header(header: Any, guest_sha256: str, max_memory: int | None) -> _Header:
    """Every field of a header whose MAC checked out, validated before anything is written:
    the key only says who made the image, not that the maker meant well."""
    if not isinstance(header, dict):
        raise ImageError("the image header is not a JSON object")
    version = header.get("format_version")
    if type(version) is int and version in _RETIRED_VERSIONS:
        raise ImageError(f"image format version {version} cannot be restored: {_RETIRED_VERSIONS[version]}")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise ImageError(f"unsupported image format version {_shown(version)}")
    if header.get("guest_sha256") != guest_sha256 or type(header.get("guest_sha256")) is not str:
        raise ImageError("the image was made with another guest module")
    # Unknown fields are refused rather than ignored: they would mean a writer this reader
    # does not understand (a new field comes with a new format version).
    if header.keys() != _HEADER_FIELDS:
        missing, extra = sorted(_HEADER_FIELDS - header.keys()), sorted(header.keys() - _HEADER_FIELDS)
        raise ImageError(f"the image header is incomplete: missing fields {missing}, unknown fields {_shown(extra)}")
    facts = guest_facts()
    size = _whole(header["memory_size"], "memory_size", facts.min_memory, _MAX_MEMORY)
    if size % PAGE:
        raise ImageError("the image's memory size is not a whole number of wasm pages")
    if max_memory is not None and size > max_memory:
        raise ImageError(f"the image needs {size} bytes of memory, more than the limit {max_memory}")
    layout = _check_layout(header["layout"], size, facts, HELPERS if version >= 5 else 4)
    stored = _whole(header["stored_bytes"], "stored_bytes", 0, size)
    if stored != layout.kept_bytes(size):
        raise ImageError("the image's stored size does not match its layout")
    sp = _whole(header["stack_pointer"], "stack_pointer", 0, size)
    # Between evaluations no guest frame is live: the stack is empty, at the top of the block.
    if sp != layout.stack_hi:
        raise ImageError("the image's stack pointer is not at the top of its stack block")
    return _Header(size, stored, sp, layout)


def decode_image(data: bytes, guest_sha256: str, key: bytes, context: str = "",
                 max_memory: int | None = None) -> MemoryImage:
    """Verify and decode an image; raises ImageError for anything that does not check out."""
    if len(data) < len(MAGIC) + 4 + _MAC or not data.startswith(MAGIC):
        raise ImageError("not a vm-system image (bad magic or truncated)")
    body, mac = data[:-_MAC], data[-_MAC:]
    if not hmac.compare_digest(_mac(key, context, body), mac):
        raise ImageError("image integrity check failed (tampered, truncated, or made for another "
                         "session or installation)")
    (hsize,) = struct.unpack_from("<I", body, len(MAGIC))
    start = len(MAGIC) + 4
    if hsize > len(body) - start:
        raise ImageError("the image header runs past the end of the image")
    header = _check_header(_parse_header(body[start : start + hsize]), guest_sha256, max_memory)
    decompressor = zlib.decompressobj()
    try:
        memory = decompressor.decompress(body[start + hsize :], header.stored)
    except zlib.error as exc:
        raise ImageError(f"the image's memory does not decompress: {exc}") from exc
    if (len(memory) != header.stored or decompressor.unconsumed_tail or decompressor.unused_data
            or not decompressor.eof):
        raise ImageError("the image's memory has the wrong size")
    return MemoryImage(memory, header.size, header.stack_pointer, header.layout)
