"""The console's files, read once from the package data into memory.

Serving only from this fixed table means no request path ever reaches the file system: a path
that is not a key is not served, so `..`, encoded slashes and symlinks have nothing to act on.
The files are addressed under a version, the hash of their contents (`/static/<version>/app.js`),
so a browser may keep them forever and still gets the new ones after an upgrade; `index.html`
names that version and is revalidated on every load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

# The only kinds of file the console ships; anything else in the folder is not served.
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
INDEX = "index.html"
# In index.html, replaced by `/static/<version>`: where the versioned files are served.
STATIC_MARK = "@STATIC@"


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@dataclass(frozen=True)
class Assets:
    """`index` is the page for every client-side route; `files` maps a path below
    `static_prefix` (`app.js`) to its file."""

    version: str
    index: Asset
    files: Mapping[str, Asset]

    @property
    def static_prefix(self) -> str:
        return f"/static/{self.version}/"


def _asset(name: str, body: bytes) -> Asset:
    suffix = name[name.rfind("."):]
    return Asset(body, CONTENT_TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def load_assets(package: str = "supervisor.adapters.web") -> Assets:
    """The console's files from `package`'s `static` folder (flat: no sub-folders)."""
    folder = resources.files(package) / "static"
    raw: dict[str, bytes] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        suffix = entry.name[entry.name.rfind("."):] if "." in entry.name else ""
        if entry.is_file() and suffix in CONTENT_TYPES:
            raw[entry.name] = entry.read_bytes()
    if INDEX not in raw:
        raise RuntimeError(f"the console's {INDEX} is missing from {package}'s package data")
    digest = hashlib.sha256()
    for name, body in raw.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
    version = digest.hexdigest()[:16]
    index_body = raw.pop(INDEX).replace(STATIC_MARK.encode(), f"/static/{version}".encode())
    files = {name: _asset(name, body) for name, body in raw.items()}
    return Assets(version, _asset(INDEX, index_body), MappingProxyType(files))
