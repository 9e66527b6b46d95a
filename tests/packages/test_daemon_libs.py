"""`vm-system libs` and `/api/v1/libraries` end to end: a REAL daemon (`vm-system serve
--registry URL`) pointed at the local registry-shaped server, driven over HTTP and through the
CLI's subprocesses (stdout, stderr, exit codes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_daemon import REPO, Daemon, checked_client, error_of, start_daemon
from registry_server import Answer, Entry, LocalRegistry, make_tarball, manifest_bytes


@pytest.fixture(scope="module")
def local_registry() -> Iterator[LocalRegistry]:
    with LocalRegistry() as reg:
        reg.publish("greeter", "1.0.0", {"index.js": b"module.exports = 'hi';\n"}, manifest={"main": "index.js"},
                    dependencies={"helper": "^2.0.0"})
        reg.publish("helper", "2.3.0", {"index.js": b"helper"})
        reg.publish("@acme/tool", "0.1.0", {"index.js": b"tool"})
        reg.publish("linky", "1.0.0", tarball=make_tarball(
            {"package.json": manifest_bytes("linky", "1.0.0")},
            entries=[Entry("package/x", b"2", linkname="/etc/passwd")]))
        reg.publish("outside", "1.0.0", manifest={"main": "../../../etc/passwd"})
        reg.routes["/broken"] = Answer(200, b"not json")
        yield reg


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, local_registry: LocalRegistry) -> Iterator[Daemon]:
    proc = start_daemon(tmp_path_factory.mktemp("libs-daemon"), "--registry", local_registry.url)
    yield proc
    assert proc.stop() == 0


@pytest.fixture(scope="module")
def api(daemon: Daemon) -> Iterator[httpx.Client]:
    with checked_client(daemon.api) as client:
        yield client


def vm(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VM_SYSTEM_URL", "VM_SYSTEM_TOKEN")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "supervisor.adapters.cli", *args, "--server-url", daemon.url],
                          capture_output=True, text=True, timeout=120, env=env, cwd=REPO)


def test_rest_add_get_list_delete(api: httpx.Client) -> None:
    r = api.post("/libraries", json={"name": "greeter@1.0.0", "with_deps": True})
    assert r.status_code == 201, r.text
    assert [p["id"] for p in r.json()] == ["greeter@1.0.0", "helper@2.3.0"]
    assert r.json()[0]["dependencies"] == {"helper": "^2.0.0"}
    detail = api.get("/libraries/greeter/1.0.0").json()
    assert detail["manifest"]["main"] == "index.js" and detail["paths"] == ["index.js", "package.json"]
    assert {p["id"] for p in api.get("/libraries").json()} >= {"greeter@1.0.0", "helper@2.3.0"}
    assert api.delete("/libraries/helper/2.3.0").json() == {"id": "helper@2.3.0", "deleted": True}
    error_of(api.delete("/libraries/helper/2.3.0"), 404, "PACKAGE_NOT_FOUND")
    error_of(api.get("/libraries/helper/2.3.0"), 404, "PACKAGE_NOT_FOUND")


def test_rest_scoped_names_both_url_shapes(api: httpx.Client) -> None:
    assert api.post("/libraries", json={"name": "@acme/tool"}).status_code == 201
    assert api.get("/libraries/@acme/tool/0.1.0").json()["id"] == "@acme/tool@0.1.0"
    assert api.get("/libraries/%40acme%2Ftool/0.1.0").json()["name"] == "@acme/tool"
    assert api.delete("/libraries/@acme/tool/0.1.0").json()["deleted"] is True


def test_rest_errors(api: httpx.Client) -> None:
    error_of(api.post("/libraries", json={"name": "ghost@1.0.0"}), 404, "PACKAGE_NOT_FOUND")
    error_of(api.post("/libraries", json={"name": "linky@1.0.0"}), 422, "PACKAGE_REFUSED")
    error_of(api.post("/libraries", json={"name": "outside@1.0.0"}), 422, "PACKAGE_REFUSED")
    error_of(api.post("/libraries", json={"name": "broken@1.0.0"}), 502, "REGISTRY_BAD_RESPONSE")
    error_of(api.post("/libraries", json={"name": "../etc@1.0.0"}), 400, "VALIDATION_ERROR")
    error_of(api.post("/libraries", json={"name": "x", "with_deps": "yes"}), 400, "INVALID_REQUEST")
    error_of(api.post("/libraries", json={"name": "x", "extra": 1}), 400, "INVALID_REQUEST")
    error_of(api.get("/libraries/UPPER/1.0.0"), 400, "VALIDATION_ERROR")
    error_of(api.get("/libraries/x/not-a-version"), 400, "VALIDATION_ERROR")
    assert all(p["name"] not in ("linky", "outside") for p in api.get("/libraries").json())


def test_rest_verify(api: httpx.Client) -> None:
    api.post("/libraries", json={"name": "helper@2.3.0"})
    report = api.post("/libraries/verify").json()
    assert report["ok"] is True and report["damaged"] == [] and report["files"] >= 2


def test_cli_libs_end_to_end(daemon: Daemon) -> None:
    added = vm(daemon, "libs", "add", "greeter-1.0.0", "--with-deps")
    assert added.returncode == 0, added.stderr
    assert "stored greeter@1.0.0" in added.stdout and "stored helper@2.3.0" in added.stdout
    listed = vm(daemon, "libs", "list", "--json")
    assert listed.returncode == 0 and "greeter@1.0.0" in {p["id"] for p in json.loads(listed.stdout)}
    assert "greeter@1.0.0" in vm(daemon, "libs", "list").stdout
    verified = vm(daemon, "libs", "verify")
    assert verified.returncode == 0 and verified.stdout.startswith("ok:")
    removed = vm(daemon, "libs", "remove", "greeter@1.0.0")
    assert removed.returncode == 0 and "removed greeter@1.0.0" in removed.stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    (("libs", "add", "ghost@1.0.0"), 1, "PACKAGE_NOT_FOUND: ghost is not on the registry"),
    (("libs", "add", "linky@1.0.0"), 1, "PACKAGE_REFUSED: linky@1.0.0: the entry 'package/x' is a symbolic link"),
    (("libs", "remove", "greeter"), 2, "give the version to remove"),
    (("libs", "remove", "Bad@1.0.0"), 2, "must be lowercase"),
    (("libs", "remove", "nothere@1.0.0"), 1, "PACKAGE_NOT_FOUND"),
])
def test_cli_errors_are_one_line(daemon: Daemon, args: tuple[str, ...], code: int, message: str) -> None:
    done = vm(daemon, *args)
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vm-system: error: ") and message in lines[0], lines


def test_cli_verify_reports_damage(daemon: Daemon, api: httpx.Client) -> None:
    api.post("/libraries", json={"name": "helper@2.3.0"})
    blobs = daemon.db.with_name(daemon.db.name + ".data") / "packages" / "sha256"
    victim = next(p for p in sorted(blobs.rglob("*")) if p.is_file())
    original = victim.read_bytes()
    victim.write_bytes(b"damaged on disk")
    try:
        done = vm(daemon, "libs", "verify")
        assert done.returncode == 1
        assert "damaged" in done.stdout
        assert done.stderr.startswith("vm-system: error: ") and "missing or damaged" in done.stderr
    finally:
        victim.write_bytes(original)


def test_cli_help_is_true() -> None:
    done = subprocess.run([sys.executable, "-m", "supervisor.adapters.cli", "libs", "--help"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0
    for word in ("add", "list", "remove", "verify"):
        assert word in done.stdout


def test_serve_refuses_a_bad_registry(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "supervisor.adapters.cli", "serve", "--db", str(tmp_path / "d.db"),
                           "--listen", "127.0.0.1:0", "--registry", "ftp://x"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("vm-system: error: --registry")


def test_a_template_lists_a_scoped_package_and_its_sessions_import_it(
        api: httpx.Client, local_registry: LocalRegistry, tmp_path: Path) -> None:
    local_registry.publish("@acme/greet", "1.0.0", {"index.js": b"module.exports = 'hello';\n"})
    assert api.post("/libraries", json={"name": "@acme/greet@1.0.0"}).status_code == 201
    template = api.post("/templates", json={"name": "scoped-lib"}).json()
    r = api.post(f"/templates/{template['id']}/libraries", json={"name": "@acme/greet@1.0.0"})
    assert r.status_code == 201, r.text
    session = api.post("/sessions", json={"template_id": template["id"], "workspace_id": "w",
                                          "base_commit_oid": "c", "worktree_path": str(tmp_path)}).json()
    assert session["status"] == "ready", session
    # Not a global build (it needs `module`): its name imports.
    execution = api.post("/executions/repl", json={"session_id": session["id"],
                                                   "input": "require('@acme/greet')"}).json()
    assert execution["status"] == "ok" and execution["result"]["json"] == "hello", execution
    r = api.delete(f"/templates/{template['id']}/libraries/@acme/greet@1.0.0")
    assert r.status_code == 200 and r.json() == {"id": "@acme/greet@1.0.0", "deleted": True}
    assert api.get(f"/templates/{template['id']}/libraries").json() == []
