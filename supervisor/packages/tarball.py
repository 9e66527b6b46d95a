"""A package's tarball: its integrity checked before one byte is decompressed, then unpacked in
memory, refusing anything that is not a plain tree of files.

Refused, each with its own message (PackageRefused): an integrity other than sha512, links
(symbolic or hard), devices, FIFOs and other special entries, absolute paths, `..`, a file
outside the top folder (`package/`, stripped), two entries at one path, and the tar bomb
caps: files, bytes of one file, bytes in all, and the compression ratio. The gzip stream is
decompressed in bounded chunks, so a bomb is stopped once it crosses a cap, never inflated whole.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import posixpath
import tarfile
import zlib
from dataclasses import dataclass
from typing import Any

from supervisor.errors import IntegrityMismatch, PackageRefused


@dataclass(frozen=True)
class UnpackLimits:
    max_files: int = 20_000
    max_file_bytes: int = 32 * 1024 * 1024
    max_total_bytes: int = 128 * 1024 * 1024
    # Unpacked bytes per compressed byte, checked once the output passes `ratio_floor` (small
    # files of repeated text compress far better than this without being a bomb).
    max_ratio: int = 200
    ratio_floor: int = 1024 * 1024


@dataclass(frozen=True)
class Unpacked:
    files: dict[str, bytes]  # normalised relative POSIX path → content
    manifest: dict[str, Any]  # package.json


CHUNK = 64 * 1024
# The tar stream holds a 512-byte header per entry and padding: allow for them beyond the
# files' own bytes.
_TAR_OVERHEAD_PER_FILE = 1536


def check_integrity(data: bytes, integrity: str, what: str) -> None:
    """`data` must match one of the sha512 hashes of the SRI string `integrity`."""
    expected: list[bytes] = []
    algorithms: set[str] = set()
    for token in integrity.split():
        algorithm, _, rest = token.partition("-")
        algorithms.add(algorithm.lower())
        if algorithm.lower() == "sha512":
            try:
                expected.append(base64.b64decode(rest.split("?")[0], validate=True))
            except ValueError:
                raise PackageRefused(f"{what}: the integrity {token[:100]!r} is not valid base64",
                                     package=what) from None
    if not expected:
        weaker = ", ".join(sorted(algorithms)) or "none"
        raise PackageRefused(f"{what}: the registry gives no sha512 integrity (only: {weaker}); "
                             "a weaker hash is not accepted", package=what, integrity=integrity[:200])
    digest = hashlib.sha512(data).digest()
    if not any(hmac.compare_digest(digest, e) for e in expected):
        raise IntegrityMismatch(f"{what}: the tarball does not match its sha512 integrity "
                                "(corrupt, truncated or tampered with); nothing was unpacked",
                                package=what)


def _gunzip(data: bytes, limits: UnpackLimits, what: str) -> bytes:
    cap = limits.max_total_bytes + limits.max_files * _TAR_OVERHEAD_PER_FILE
    inflater = zlib.decompressobj(wbits=31)  # gzip only
    out = bytearray()
    pending = data
    try:
        while pending and not inflater.eof:
            out += inflater.decompress(pending, CHUNK)
            pending = inflater.unconsumed_tail
            _check_growth(len(out), len(data) - len(pending), cap, limits, what)
        if not inflater.eof:
            raise PackageRefused(f"{what}: the tarball's gzip stream ends early", package=what)
    except zlib.error as exc:
        raise PackageRefused(f"{what}: the tarball is not valid gzip ({exc})", package=what) from None
    return bytes(out)


def _check_growth(size: int, consumed: int, cap: int, limits: UnpackLimits, what: str) -> None:
    if size > cap:
        raise PackageRefused(f"{what}: the tarball unpacks to more than {cap} bytes (a tar bomb?)",
                             package=what, limit="max_total_bytes")
    if size > limits.ratio_floor and size > limits.max_ratio * max(consumed, 1):
        raise PackageRefused(f"{what}: the tarball expands more than {limits.max_ratio} times "
                             "(a tar bomb?)", package=what, limit="max_ratio")


_KINDS = {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link",
          tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
          tarfile.FIFOTYPE: "a FIFO", tarfile.CONTTYPE: "a contiguous file",
          tarfile.GNUTYPE_SPARSE: "a sparse file"}


def _entry_path(member: tarfile.TarInfo, what: str) -> str | None:
    """The entry's path below the top folder (None for the top folder itself)."""
    name = member.name
    if "\0" in name or "\\" in name:
        raise PackageRefused(f"{what}: the entry {name[:200]!r} has a NUL or backslash in its path",
                             package=what, entry=name[:200])
    if name.startswith("/"):
        raise PackageRefused(f"{what}: the entry {name[:200]!r} has an absolute path",
                             package=what, entry=name[:200])
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PackageRefused(f"{what}: the entry {name[:200]!r} has a '..' component",
                             package=what, entry=name[:200])
    if len(parts) <= 1:
        if member.isdir():
            return None
        raise PackageRefused(f"{what}: the entry {name[:200]!r} is outside the package's folder",
                             package=what, entry=name[:200])
    return "/".join(parts[1:])


def _members(tar: tarfile.TarFile, limits: UnpackLimits, what: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    total = 0
    for member in tar:
        kind = _KINDS.get(member.type)
        if kind is not None or not (member.isreg() or member.isdir()):
            raise PackageRefused(f"{what}: the entry {member.name[:200]!r} is {kind or 'not a file or directory'}",
                                 package=what, entry=member.name[:200])
        path = _entry_path(member, what)
        if path is None:
            continue
        if member.isdir():
            dirs.add(path)
            continue
        if path in files:
            raise PackageRefused(f"{what}: {path!r} appears twice in the tarball", package=what, entry=path)
        if len(files) >= limits.max_files:
            raise PackageRefused(f"{what}: more than {limits.max_files} files", package=what,
                                 limit="max_files")
        if member.size > limits.max_file_bytes:
            raise PackageRefused(f"{what}: {path!r} is larger than {limits.max_file_bytes} bytes",
                                 package=what, entry=path, limit="max_file_bytes")
        total += member.size
        if total > limits.max_total_bytes:
            raise PackageRefused(f"{what}: its files hold more than {limits.max_total_bytes} bytes",
                                 package=what, limit="max_total_bytes")
        extracted = tar.extractfile(member)
        data = extracted.read() if extracted is not None else b""
        if len(data) != member.size:
            raise PackageRefused(f"{what}: the tarball ends inside {path!r}", package=what, entry=path)
        files[path] = data
    for path in files:
        parent = posixpath.dirname(path)
        while parent:
            if parent in files:
                raise PackageRefused(f"{what}: {parent!r} is both a file and a directory",
                                     package=what, entry=parent)
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    clash = dirs & files.keys()
    if clash:
        entry = sorted(clash)[0]
        raise PackageRefused(f"{what}: {entry!r} is both a file and a directory", package=what, entry=entry)
    return files


def unpack(data: bytes, integrity: str, what: str, limits: UnpackLimits | None = None) -> Unpacked:
    """The files of a package tarball (`what` names it in messages), after its integrity."""
    limits = limits or UnpackLimits()
    check_integrity(data, integrity, what)
    raw = _gunzip(data, limits, what)
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            files = _members(tar, limits, what)
    except tarfile.TarError as exc:
        raise PackageRefused(f"{what}: the tarball is not a valid tar archive ({exc})", package=what) from None
    if "package.json" not in files:
        raise PackageRefused(f"{what}: the tarball has no package.json", package=what)
    try:
        manifest = json.loads(files["package.json"])
    except (ValueError, UnicodeDecodeError):
        raise PackageRefused(f"{what}: its package.json is not valid JSON", package=what) from None
    except RecursionError:  # nesting near 1,000 levels: json's C scanner gives up, not a ValueError
        raise PackageRefused(f"{what}: its package.json is nested too deep", package=what) from None
    if not isinstance(manifest, dict):
        raise PackageRefused(f"{what}: its package.json is not a JSON object", package=what)
    return Unpacked(files, manifest)
