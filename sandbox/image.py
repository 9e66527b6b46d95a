"""Sandbox images: a checkpoint serialised so it can be stored, copied or sent elsewhere.

Layout: MAGIC | u32 header length | header (JSON) | zlib(memory) | HMAC-SHA256.
The HMAC covers everything before it and is keyed by the installation key bound to a
context (for the supervisor, the session id), so an image cannot be tampered with, truncated,
or moved to another session or installation without detection. Nothing is decompressed or
written into guest memory before the HMAC, the format version and the guest hash check out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import zlib
from pathlib import Path

from sandbox.errors import ImageError
from sandbox.instance import PAGE, Layout, MemoryImage

MAGIC = b"VMSYSIMG"
# 2: the layout records the interrupt counter. 3: the runtime calls a third host function (the
# promise rejection tracker); a version-2 image restores as it was, without that tracking.
FORMAT_VERSION = 3
READABLE_VERSIONS = (2, 3)
_MAC = 32
KEY_ENV = "VM_SYSTEM_IMAGE_KEY_FILE"


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


def image_header(data: bytes) -> dict:
    """The header of an image, unauthenticated: for display only, never for restoring."""
    if len(data) < len(MAGIC) + 4 or not data.startswith(MAGIC):
        raise ImageError("not a vm-system image")
    (size,) = struct.unpack_from("<I", data, len(MAGIC))
    try:
        return json.loads(data[len(MAGIC) + 4 : len(MAGIC) + 4 + size])
    except ValueError as exc:
        raise ImageError("the image header is not readable") from exc


def decode_image(data: bytes, guest_sha256: str, key: bytes, context: str = "",
                 max_memory: int | None = None) -> MemoryImage:
    """Verify and decode an image; raises ImageError for anything that does not check out."""
    if len(data) < len(MAGIC) + 4 + _MAC or not data.startswith(MAGIC):
        raise ImageError("not a vm-system image (bad magic or truncated)")
    body, mac = data[:-_MAC], data[-_MAC:]
    if not hmac.compare_digest(_mac(key, context, body), mac):
        raise ImageError("image integrity check failed (tampered, truncated, or made for another "
                         "session or installation)")
    header = image_header(body)
    if header.get("format_version") not in READABLE_VERSIONS:
        raise ImageError(f"unsupported image format version {header.get('format_version')!r}")
    if header.get("guest_sha256") != guest_sha256:
        raise ImageError("the image was made with another guest module")
    try:
        size = int(header["memory_size"])
        stored = int(header["stored_bytes"])
        sp = int(header["stack_pointer"])
        layout = Layout.from_json(header["layout"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ImageError(f"the image header is incomplete: {exc}") from exc
    if size % PAGE or size >= 2**32 or not (
        0 <= layout.rodata_end <= layout.old_stack_lo < layout.stack_lo < layout.stack_hi <= size
    ) or not 0 <= layout.interrupt_counter < size - 4:
        raise ImageError("the image's memory layout is inconsistent")
    if stored != layout.kept_bytes(size):
        raise ImageError("the image's memory layout is inconsistent")
    if max_memory is not None and size > max_memory:
        raise ImageError(f"the image needs {size} bytes of memory, more than the limit {max_memory}")
    (hsize,) = struct.unpack_from("<I", body, len(MAGIC))
    decompressor = zlib.decompressobj()
    try:
        memory = decompressor.decompress(body[len(MAGIC) + 4 + hsize :], stored)
    except zlib.error as exc:
        raise ImageError(f"the image's memory does not decompress: {exc}") from exc
    if len(memory) != stored or decompressor.unconsumed_tail or not decompressor.eof:
        raise ImageError("the image's memory has the wrong size")
    return MemoryImage(memory, size, sp, layout)
