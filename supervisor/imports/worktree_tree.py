"""A session's worktree as a `FileTree`: what its imports may read.

It reads through the `fs` module's confinement (`ConfinedFs`: every path resolved by the kernel
beneath the worktree's directory descriptor), read-only, so whatever `fs` refuses (a symlink
leading out, a `..` above the root, a mount point, a device, a file with several hard links)
imports cannot reach either: here it reads as absent.
"""

from __future__ import annotations

import errno

from supervisor.imports.tree import Kind
from supervisor.modules.errors import ModuleError
from supervisor.modules.fs import ConfinedFs

MAX_MODULE_BYTES = 8 * 1024 * 1024  # as a worktree file the daemon reads for a client


class WorktreeTree:
    """Files beneath `root` (an existing directory), opened on first use; `close` releases
    the directory descriptor."""

    def __init__(self, root: str, *, max_file_bytes: int = MAX_MODULE_BYTES) -> None:
        self._root = root
        self._max = max_file_bytes
        self._fs: ConfinedFs | None = None

    def _confined(self) -> ConfinedFs:
        if self._fs is None:
            self._fs = ConfinedFs(self._root, ".", write=False, max_file_bytes=self._max)
        return self._fs

    def kind(self, path: str) -> Kind | None:
        try:
            info = self._confined().stat(path or ".", follow_symlinks=True)
        except (ModuleError, OSError):  # OSError: the worktree itself is gone
            return None
        if info.is_file:
            return "file"
        return "dir" if info.is_directory else None

    def read(self, path: str) -> bytes:
        try:
            return self._confined().read_file(path)
        except ModuleError as exc:
            if exc.code == "ERR_FS_FILE_TOO_LARGE":
                raise OSError(errno.EFBIG, f"larger than {self._max} bytes") from None
            raise FileNotFoundError(errno.ENOENT, "not a file of the tree", path) from None
        except OSError:
            raise FileNotFoundError(errno.ENOENT, "not a file of the tree", path) from None

    def close(self) -> None:
        if self._fs is not None:
            self._fs.close()
            self._fs = None
