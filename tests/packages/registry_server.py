"""A registry-shaped HTTP server on 127.0.0.1 for the package store's tests, and real .tgz
tarballs built in memory with tarfile.

    with LocalRegistry() as reg:
        reg.publish("left-pad", "1.3.0", {"index.js": b"module.exports = 1"})
        client = RegistryClient(reg.url)

`publish` builds the package's tarball (a `package.json` is made unless given) and its metadata
(`dist.tarball` on this server, `dist.integrity` the tarball's sha512), each overridable so a
test can break exactly one thing. `routes` maps a path to a raw answer for anything else
(metadata that is not JSON, a 500, a body cut short).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import socket
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@dataclass
class Entry:
    """One tar entry beyond plain files: a link, a device, a path of any shape."""

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""


def make_tarball(files: dict[str, bytes], *, top: str = "package", entries: list[Entry] | None = None,
                 compress: bool = True) -> bytes:
    """A gzipped tarball holding `files` below `top/` and then `entries` (names as given)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(f"{top}/{path}" if top else path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for entry in entries or []:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.type
            info.linkname = entry.linkname
            if entry.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                tar.addfile(info)
    return gzip.compress(raw.getvalue(), mtime=0) if compress else raw.getvalue()


def manifest_bytes(name: str, version: str, **fields: Any) -> bytes:
    return json.dumps({"name": name, "version": version, **fields}).encode()


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Send this Content-Length whatever the body's size (a body cut short).
    content_length: int | None = None


class LocalRegistry:
    def __init__(self) -> None:
        self.packages: dict[str, dict[str, Any]] = {}  # name → metadata document
        self.tarballs: dict[str, bytes] = {}  # path → bytes
        self.routes: dict[str, Answer] = {}
        self.requests: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                registry.requests.append(self.path)
                answer = registry.answer(self.path)
                self.send_response(answer.status)
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                length = answer.content_length if answer.content_length is not None else len(answer.body)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(answer.body)
                if answer.content_length is not None:
                    self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> LocalRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str) -> Answer:
        if path in self.routes:
            return self.routes[path]
        if path in self.tarballs:
            return Answer(body=self.tarballs[path], headers={"Content-Type": "application/octet-stream"})
        name = unquote(path.lstrip("/"))
        if name in self.packages:
            return Answer(body=json.dumps(self.packages[name]).encode(),
                          headers={"Content-Type": "application/json"})
        return Answer(404, b'{"error":"Not found"}', {"Content-Type": "application/json"})

    def publish(self, name: str, version: str, files: dict[str, bytes] | None = None, *,
                tarball: bytes | None = None, dependencies: dict[str, str] | None = None,
                manifest: dict[str, Any] | None = None, dist: dict[str, Any] | None = None,
                latest: bool = True, edit: Callable[[dict[str, Any]], None] | None = None) -> bytes:
        """Serve `name@version`; the tarball's bytes. `manifest` adds package.json fields,
        `dist` replaces metadata dist fields, `edit` changes the version's metadata entry last."""
        files = dict(files or {})
        fields = dict(manifest or {})
        if dependencies:
            fields["dependencies"] = dependencies
        files.setdefault("package.json", manifest_bytes(name, version, **fields))
        data = tarball if tarball is not None else make_tarball(files)
        path = f"/{quote(name, safe='@')}/-/{name.split('/')[-1]}-{version}.tgz"
        self.tarballs[path] = data
        doc = self.packages.setdefault(name, {"name": name, "dist-tags": {}, "versions": {}})
        entry: dict[str, Any] = {"name": name, "version": version, "dependencies": dependencies or {},
                                 "dist": {"tarball": self.url + path, "integrity": integrity_of(data),
                                          "shasum": hashlib.sha1(data).hexdigest()}}
        if dist is not None:
            entry["dist"] = dist
        if edit is not None:
            edit(entry)
        doc["versions"][version] = entry
        if latest:
            doc["dist-tags"]["latest"] = version
        return data

    def tarball_path(self, name: str, version: str) -> str:
        return f"/{quote(name, safe='@')}/-/{name.split('/')[-1]}-{version}.tgz"


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (a registry that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
