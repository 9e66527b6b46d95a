"""The content-addressed files of stored packages: `<root>/sha256/ab/cdef...` (the sha256 of the
content, split after two hex digits).

A blob is written to a temporary file in its directory, fsynced, renamed into place and the
directory fsynced: it is there whole or not at all. Every path is opened beneath the root's
directory descriptor, one component at a time, never following a symlink; reads check the
content against its name.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class BlobMissing(Exception):
    pass


class BlobDamaged(Exception):
    pass


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _split(self, digest: str) -> tuple[str, str]:
        if not _SHA256.match(digest):
            raise ValueError(f"not a sha256: {digest[:80]!r}")
        return digest[:2], digest[2:]

    @contextlib.contextmanager
    def _dir(self, shard: str, create: bool) -> Iterator[int]:
        """A descriptor of `<root>/sha256/<shard>`, opened without following symlinks."""
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in ("sha256", shard):
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def put(self, data: bytes) -> tuple[str, bool]:
        """Store `data`; its sha256, and whether this call wrote it (False: it was there, intact)."""
        digest = sha256_of(data)
        shard, rest = self._split(digest)
        with self._dir(shard, create=True) as fd:
            try:
                if self._read_at(fd, rest, digest) == data:
                    return digest, False
            except (BlobMissing, BlobDamaged):
                pass  # written (again) below
            temp = f".tmp-{secrets.token_hex(8)}"
            out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                          0o644, dir_fd=fd)
            try:
                with os.fdopen(out, "wb", closefd=False) as f:
                    f.write(data)
                    f.flush()
                os.fsync(out)
            except BaseException:
                os.close(out)
                os.unlink(temp, dir_fd=fd)
                raise
            os.close(out)
            os.replace(temp, rest, src_dir_fd=fd, dst_dir_fd=fd)
            os.fsync(fd)
        return digest, True

    def _read_at(self, fd: int, rest: str, digest: str) -> bytes:
        try:
            blob = os.open(rest, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except FileNotFoundError:
            raise BlobMissing(digest) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise BlobDamaged(f"{digest} is a symlink") from None
            raise
        with os.fdopen(blob, "rb") as f:
            data = f.read()
        if sha256_of(data) != digest:
            raise BlobDamaged(digest)
        return data

    def get(self, digest: str) -> bytes:
        """The content named `digest`; BlobMissing, or BlobDamaged when it no longer hashes to it."""
        shard, rest = self._split(digest)
        try:
            with self._dir(shard, create=False) as fd:
                return self._read_at(fd, rest, digest)
        except FileNotFoundError:
            raise BlobMissing(digest) from None
        except NotADirectoryError:
            raise BlobDamaged(f"{digest}: its directory is not a directory") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a directory of the path was replaced by a symlink
                raise BlobDamaged(f"{digest}: a directory of its path is a symlink") from None
            raise

    def delete(self, digest: str) -> None:
        shard, rest = self._split(digest)
        try:
            with self._dir(shard, create=False) as fd, contextlib.suppress(FileNotFoundError):
                os.unlink(rest, dir_fd=fd)
        except (FileNotFoundError, NotADirectoryError):
            return

    def path_of(self, digest: str) -> Path:
        """Where the blob lives (for tests and operators; never opened through this path)."""
        shard, rest = self._split(digest)
        return self.root / "sha256" / shard / rest
