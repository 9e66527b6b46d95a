"""`PackageTree`: one stored package as a `FileTree` (supervisor/imports/tree.py), read from the
blob store. It holds only regular files and the directories they imply: no links, nothing
outside the package."""

from __future__ import annotations

from store import PackageFile
from supervisor.errors import IntegrityMismatch
from supervisor.imports.tree import Kind, implied_directories
from supervisor.packages.blobs import BlobDamaged, BlobMissing, BlobStore


class PackageTree:
    def __init__(self, what: str, files: list[PackageFile], blobs: BlobStore) -> None:
        self._what = what
        self._files = {f.path: f for f in files}
        self._blobs = blobs
        self._dirs = implied_directories(self._files)

    def kind(self, path: str) -> Kind | None:
        if path in self._files:
            return "file"
        if path in self._dirs:
            return "dir"
        return None

    def read(self, path: str) -> bytes:
        entry = self._files.get(path)
        if entry is None:
            raise FileNotFoundError(path)
        try:
            return self._blobs.get(entry.sha256)
        except (BlobMissing, BlobDamaged):
            raise IntegrityMismatch(f"{self._what}: the stored file {path!r} is missing or damaged; "
                                    "`vm-system libs verify` lists what is, `libs remove` and `libs add` "
                                    "store it again", package=self._what, path=path) from None

    def paths(self) -> list[str]:
        """Every file's path, sorted."""
        return sorted(self._files)
