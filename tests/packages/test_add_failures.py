"""Every way `PackageLibrary.add` refuses a package, against a local registry-shaped server:
each refusal has its own error and message, and leaves nothing stored (no index row, no blob)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from package_blobs import blob_files
from registry_server import Answer, Entry, LocalRegistry, closed_port_url, integrity_of, make_tarball, manifest_bytes

from store import Store
from supervisor.errors import (
    IntegrityMismatch,
    PackageNotFound,
    PackageRefused,
    RegistryBadResponse,
    RegistryUnreachable,
    SupervisorError,
    ValidationError,
)
from supervisor.packages import PackageLibrary, RegistryClient
from supervisor.packages.tarball import UnpackLimits

PKG = manifest_bytes("pkg", "1.0.0")


def refused(library: PackageLibrary, store: Store, spec: str, error: type[SupervisorError],
            match: str) -> SupervisorError:
    with pytest.raises(error, match=match) as raised:
        library.add(spec)
    assert store.list_packages() == []
    assert blob_files(library._blobs.root) == []
    return raised.value


def test_a_package_is_added_and_readable(library: PackageLibrary, registry: LocalRegistry) -> None:
    registry.publish("pkg", "1.0.0", {"index.js": b"module.exports = 42;\n", "lib/a.js": b"a"},
                     manifest={"main": "index.js"})
    [pkg] = library.add("pkg@1.0.0")
    assert (pkg.name, pkg.version, pkg.file_count) == ("pkg", "1.0.0", 3)
    assert pkg.tree.read("index.js") == b"module.exports = 42;\n"
    assert pkg.tree.kind("lib") == "dir" and pkg.tree.kind("") == "dir" and pkg.tree.kind("nope") is None
    with pytest.raises(FileNotFoundError):
        pkg.tree.read("lib")
    assert pkg.integrity.startswith("sha512-")


def test_latest_is_taken_without_a_version(library: PackageLibrary, registry: LocalRegistry) -> None:
    registry.publish("pkg", "1.0.0", {"a.js": b"1"})
    registry.publish("pkg", "1.1.0", {"a.js": b"2"})
    registry.publish("pkg", "2.0.0-beta", {"a.js": b"3"}, latest=False)
    [pkg] = library.add("pkg")
    assert pkg.version == "1.1.0"


def test_a_stored_package_is_not_fetched_again(library: PackageLibrary, registry: LocalRegistry) -> None:
    registry.publish("pkg", "1.0.0", {"a.js": b"1"})
    library.add("pkg@1.0.0")
    before = len(registry.requests)
    library.add("pkg-1.0.0")
    assert len(registry.requests) == before


def test_scoped_names_reach_the_registry_encoded(library: PackageLibrary, registry: LocalRegistry) -> None:
    registry.publish("@acme/util", "0.1.0", {"index.js": b"x"})
    [pkg] = library.add("@acme/util@0.1.0")
    assert pkg.name == "@acme/util"
    assert registry.requests[0] == "/@acme%2Futil"


def test_an_unknown_package_is_not_found(library: PackageLibrary, store: Store) -> None:
    refused(library, store, "nothing-here@1.0.0", PackageNotFound, "not on the registry")


def test_an_unknown_version_is_not_found(library: PackageLibrary, store: Store, registry: LocalRegistry) -> None:
    registry.publish("pkg", "1.0.0")
    refused(library, store, "pkg@9.9.9", PackageNotFound, r"pkg@9\.9\.9 is not on the registry")


def test_a_registry_that_is_down(store: Store, tmp_path: Path) -> None:
    lib = PackageLibrary(store, tmp_path / "blobs", RegistryClient(closed_port_url()))
    with pytest.raises(RegistryUnreachable, match="unreachable .*connection refused"):
        lib.add("pkg@1.0.0")
    assert store.list_packages() == []


def test_a_registry_that_fails(library: PackageLibrary, store: Store, registry: LocalRegistry) -> None:
    registry.routes["/pkg"] = Answer(503, b"busy")
    refused(library, store, "pkg@1.0.0", RegistryUnreachable, r"failed \(503\)")


@pytest.mark.parametrize(("body", "match"), [
    (b"<html>not json</html>", "is not JSON"),
    (b'["a list"]', "has no versions"),
    (b'{"name": "pkg"}', "has no versions"),
    (b"\xff\xfe", "is not JSON"),
])
def test_metadata_that_is_not_usable(library: PackageLibrary, store: Store, registry: LocalRegistry,
                                     body: bytes, match: str) -> None:
    registry.routes["/pkg"] = Answer(200, body)
    refused(library, store, "pkg@1.0.0", RegistryBadResponse, match)


def test_metadata_too_large(store: Store, registry: LocalRegistry, tmp_path: Path) -> None:
    registry.publish("pkg", "1.0.0", manifest={"description": "x" * 5000})
    registry.packages["pkg"]["padding"] = "y" * 10_000
    lib = PackageLibrary(store, tmp_path / "blobs", RegistryClient(registry.url, max_metadata_bytes=4096))
    with pytest.raises(RegistryBadResponse, match="larger than 4096 bytes"):
        lib.add("pkg@1.0.0")


def test_metadata_too_large_without_a_content_length(store: Store, registry: LocalRegistry, tmp_path: Path) -> None:
    # A declared length within the cap, a body that goes on: the read stops at the cap.
    registry.routes["/pkg"] = Answer(200, b"{" + b" " * 20_000 + b"}", content_length=10)
    lib = PackageLibrary(store, tmp_path / "blobs", RegistryClient(registry.url, max_metadata_bytes=4096))
    with pytest.raises((RegistryBadResponse, RegistryUnreachable)):
        lib.add("pkg@1.0.0")
    assert store.list_packages() == []


@pytest.mark.parametrize(("dist", "error", "match"), [
    ({}, RegistryBadResponse, "no dist.tarball"),
    ({"integrity": "sha512-AAAA"}, RegistryBadResponse, "no dist.tarball"),
    ({"tarball": "TARBALL"}, RegistryBadResponse, "no dist.integrity"),
    ({"tarball": "TARBALL", "shasum": "abc"}, PackageRefused, "no sha512 integrity .only: sha1"),
    ({"tarball": "TARBALL", "integrity": "sha1-AAAA"}, PackageRefused, "no sha512 integrity .only: sha1"),
    ({"tarball": "TARBALL", "integrity": "sha256-AAAA sha1-BBBB"}, PackageRefused, "only: sha1, sha256"),
    ({"tarball": "TARBALL", "integrity": "sha512-@@@@"}, PackageRefused, "not valid base64"),
    ({"tarball": "http://169.254.169.254/x.tgz", "integrity": "sha512-AAAA"}, RegistryBadResponse,
     "not on the registry's origin"),
])
def test_dist_fields(library: PackageLibrary, store: Store, registry: LocalRegistry, dist: dict[str, Any],
                     error: type[SupervisorError], match: str) -> None:
    registry.publish("pkg", "1.0.0")
    real = registry.url + registry.tarball_path("pkg", "1.0.0")
    registry.packages["pkg"]["versions"]["1.0.0"]["dist"] = {
        k: (real if v == "TARBALL" else v) for k, v in dist.items()}
    refused(library, store, "pkg@1.0.0", error, match)


def test_an_integrity_mismatch_is_refused_before_unpacking(library: PackageLibrary, store: Store,
                                                            registry: LocalRegistry) -> None:
    other = make_tarball({"package.json": PKG, "evil.js": b"evil"})
    registry.publish("pkg", "1.0.0", tarball=other, dist={
        "tarball": registry.url + registry.tarball_path("pkg", "1.0.0"),
        "integrity": integrity_of(make_tarball({"package.json": PKG}))})
    error = refused(library, store, "pkg@1.0.0", IntegrityMismatch, "does not match its sha512")
    assert "nothing was unpacked" in error.message


def test_one_matching_hash_among_several_is_enough(library: PackageLibrary, registry: LocalRegistry) -> None:
    data = make_tarball({"package.json": PKG})
    registry.publish("pkg", "1.0.0", tarball=data, dist={
        "tarball": registry.url + registry.tarball_path("pkg", "1.0.0"),
        "integrity": f"sha512-{'A' * 86}== {integrity_of(data)} sha1-xyz"})
    assert library.add("pkg@1.0.0")[0].version == "1.0.0"


def test_a_truncated_tarball(library: PackageLibrary, store: Store, registry: LocalRegistry) -> None:
    data = registry.publish("pkg", "1.0.0", {"big.js": os.urandom(50_000)})
    # The server sends the first half and says that is all: the hash no longer matches.
    registry.routes[registry.tarball_path("pkg", "1.0.0")] = Answer(200, data[: len(data) // 2])
    refused(library, store, "pkg@1.0.0", IntegrityMismatch, "truncated")


def test_a_connection_cut_inside_the_tarball(library: PackageLibrary, store: Store, registry: LocalRegistry) -> None:
    data = registry.publish("pkg", "1.0.0", {"big.js": os.urandom(50_000)})
    registry.routes[registry.tarball_path("pkg", "1.0.0")] = Answer(200, data[:1000], content_length=len(data))
    refused(library, store, "pkg@1.0.0", RegistryUnreachable, "the connection broke")


def _publish_raw(registry: LocalRegistry, tarball: bytes) -> None:
    registry.publish("pkg", "1.0.0", tarball=tarball)


@pytest.mark.parametrize(("entries", "match"), [
    ([Entry("package/../../etc/cron.d/x", data=b"x")], "has a '..' component"),
    ([Entry("package/lib/../../x.js", data=b"x")], "has a '..' component"),
    ([Entry("/etc/passwd", data=b"x")], "has an absolute path"),
    ([Entry("package/link.js", tarfile.SYMTYPE, linkname="/etc/passwd")], "is a symbolic link"),
    ([Entry("package/inner.js", tarfile.SYMTYPE, linkname="index.js")], "is a symbolic link"),
    ([Entry("package/hard.js", tarfile.LNKTYPE, linkname="package/package.json")], "is a hard link"),
    ([Entry("package/dev", tarfile.CHRTYPE)], "is a character device"),
    ([Entry("package/blk", tarfile.BLKTYPE)], "is a block device"),
    ([Entry("package/fifo", tarfile.FIFOTYPE)], "is a FIFO"),
    ([Entry("toplevel.js", data=b"x")], "outside the package's folder"),
    ([Entry("package/a\\..\\x.js", data=b"x")], "backslash"),
    ([Entry("package/package.json", data=b"{}")], "appears twice"),
    ([Entry("package/dup/x", data=b"1"), Entry("package/dup", data=b"2")], "both a file and a directory"),
])
def test_unsafe_entries_are_refused(library: PackageLibrary, store: Store, registry: LocalRegistry,
                                    entries: list[Entry], match: str) -> None:
    _publish_raw(registry, make_tarball({"package.json": PKG, "index.js": b"1"}, entries=entries))
    refused(library, store, "pkg@1.0.0", PackageRefused, match)


def test_a_tar_bomb_is_stopped_early(store: Store, registry: LocalRegistry, tmp_path: Path) -> None:
    # 256 MiB of zeros in one file, compressed to about 250 KiB: refused long before it is inflated.
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("package/package.json")
        info.size = len(PKG)
        tar.addfile(info, io.BytesIO(PKG))
    header = raw.getvalue()[:-1024]  # without the end-of-archive blocks
    big = tarfile.TarInfo("package/zeros.bin")
    big.size = 256 * 1024 * 1024
    stream = io.BytesIO()
    with gzip.GzipFile(fileobj=stream, mode="wb", mtime=0) as gz:
        gz.write(header + big.tobuf())
        chunk = bytes(1024 * 1024)
        for _ in range(256):
            gz.write(chunk)
    bomb = stream.getvalue()
    assert len(bomb) < 2 * 1024 * 1024
    _publish_raw(registry, bomb)
    lib = PackageLibrary(store, tmp_path / "blobs", RegistryClient(registry.url))
    with pytest.raises(PackageRefused, match="tar bomb"):
        lib.add("pkg@1.0.0")
    assert store.list_packages() == []


@pytest.mark.parametrize(("limits", "files", "match"), [
    (UnpackLimits(max_files=3), {f"f{i}.js": b"x" for i in range(5)}, "more than 3 files"),
    (UnpackLimits(max_file_bytes=100), {"big.js": b"x" * 101}, "larger than 100 bytes"),
    (UnpackLimits(max_total_bytes=150, max_ratio=10**6), {"a.js": b"a" * 100, "b.js": b"b" * 100},
     "more than 150 bytes"),
])
def test_unpack_caps(store: Store, registry: LocalRegistry, tmp_path: Path, limits: UnpackLimits,
                     files: dict[str, bytes], match: str) -> None:
    registry.publish("pkg", "1.0.0", files)
    lib = PackageLibrary(store, tmp_path / "blobs", RegistryClient(registry.url), limits)
    with pytest.raises(PackageRefused, match=match):
        lib.add("pkg@1.0.0")
    assert store.list_packages() == []


def test_a_high_compression_ratio_is_refused(store: Store, registry: LocalRegistry, tmp_path: Path) -> None:
    registry.publish("pkg", "1.0.0", {"zeros.js": bytes(4 * 1024 * 1024)})
    lib = PackageLibrary(store, tmp_path / "blobs", RegistryClient(registry.url), UnpackLimits(max_ratio=50))
    with pytest.raises(PackageRefused, match="expands more than 50 times"):
        lib.add("pkg@1.0.0")


@pytest.mark.parametrize(("tarball", "match"), [
    (b"not gzip at all", "not valid gzip"),
    (gzip.compress(b"not a tar archive" * 100), "not a valid tar archive"),
    (make_tarball({"index.js": b"1"}), "has no package.json"),
    (make_tarball({"package.json": b"{not json"}), "package.json is not valid JSON"),
    (make_tarball({"package.json": b"[1]"}), "package.json is not a JSON object"),
    (make_tarball({"package.json": manifest_bytes("other", "1.0.0")}), "says other@1.0.0, not pkg@1.0.0"),
    (gzip.compress(make_tarball({"package.json": PKG}, compress=False))[:-20], "ends early|not valid gzip"),
])
def test_tarballs_that_are_not_packages(library: PackageLibrary, store: Store, registry: LocalRegistry,
                                        tarball: bytes, match: str) -> None:
    _publish_raw(registry, tarball)
    refused(library, store, "pkg@1.0.0", PackageRefused, match)


@pytest.mark.parametrize(("fields", "match"), [
    ({"main": "../outside.js"}, "main '../outside.js' points outside"),
    ({"main": "/etc/passwd"}, "main '/etc/passwd' points outside"),
    ({"main": "lib/../../x.js"}, "points outside"),
    ({"main": 42}, "main is not a string"),
    ({"module": "../../esm.js"}, "module .* points outside"),
    ({"browser": "../b.js"}, "browser .* points outside"),
    ({"exports": "../x.js"}, "exports target '../x.js'"),
    ({"exports": {".": {"import": "./ok.js", "require": "../../no.js"}}}, "exports target '../../no.js'"),
    ({"exports": {"./sub": "lodash/x.js"}}, "exports target 'lodash/x.js'"),
    ({"exports": {".": ["./a.js", "/abs.js"]}}, "exports target '/abs.js'"),
    ({"main": "file:///etc/passwd"}, "points outside"),
    ({"dependencies": {"x": "git+https://example.com/x.git"}}, "is not an npm name with a semver range"),
    ({"dependencies": {"../x": "^1"}}, "is not an npm name with a semver range"),
    ({"dependencies": {"x": 1}}, "no version range"),
])
def test_a_manifest_leading_out_is_refused_at_add(library: PackageLibrary, store: Store, registry: LocalRegistry,
                                                   fields: dict[str, Any], match: str) -> None:
    registry.publish("pkg", "1.0.0", manifest=fields)
    refused(library, store, "pkg@1.0.0", PackageRefused, match)


def test_entry_points_inside_are_kept(library: PackageLibrary, registry: LocalRegistry) -> None:
    registry.publish("pkg", "1.0.0", {"lib/index.js": b"1"}, manifest={
        "main": "./lib/index", "module": "lib/index.js", "exports": {".": {"import": "./lib/index.js"}, "./x": None}})
    assert library.add("pkg@1.0.0")[0].manifest["main"] == "./lib/index"


@pytest.mark.parametrize("spec", ["../../x", "lodash@../1.0.0", "UPPER@1.0.0", ""])
def test_bad_specs_never_reach_the_registry(library: PackageLibrary, registry: LocalRegistry, spec: str) -> None:
    with pytest.raises(ValidationError):
        library.add(spec)
    assert registry.requests == []
