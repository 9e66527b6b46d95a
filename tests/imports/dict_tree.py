"""A FileTree held in a dict (path -> text), for the package trees of unit tests."""

from __future__ import annotations

from supervisor.imports.tree import Kind


class DictTree:
    def __init__(self, files: dict[str, str]) -> None:
        self.files = {path: text.encode() for path, text in files.items()}
        self.dirs = {""}
        for path in files:
            parts = path.split("/")
            for depth in range(1, len(parts)):
                self.dirs.add("/".join(parts[:depth]))

    def kind(self, path: str) -> Kind | None:
        if path in self.files:
            return "file"
        return "dir" if path in self.dirs else None

    def read(self, path: str) -> bytes:
        if path not in self.files:
            raise FileNotFoundError(path)
        return self.files[path]
