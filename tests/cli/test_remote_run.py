"""`vm-system run` on a daemon: when it goes there (VM_SYSTEM_URL never decides it alone), that
its console output streams while the script still runs (POST /run as server-sent events), that
`--json` prints one document embedded and remote, and what `exec` and modules print.

Against a real `vm-system serve` on a free port of 127.0.0.1 (test_client_commands.Daemon)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_client_commands import Daemon, free_port, ok_json, one_line, vm

from tests.http.http_daemon import sse_events  # the one test parser of event streams

ROOT = Path(__file__).resolve().parents[2]
# About 3 s of ticks, 100 ms apart: the first ones arrive while the rest are still to come.
TICKS = ("for (let i = 0; i < 30; i++) { console.log('tick ' + i); "
         "const t = Date.now(); while (Date.now() - t < 100) {} } 'done'")
ROOMY = {"cpu_ms": 30_000, "wall_ms": 30_000}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("remote-run"))
    yield d
    d.stop()


# ----- POST /run as a stream ---------------------------------------------------------------


def test_post_run_streams_the_events_while_the_run_goes_on(daemon: Daemon) -> None:
    with httpx.Client(base_url=daemon.url + "/api/v1", timeout=60) as api:
        with api.stream("POST", "/run", json={"code": TICKS, "limits": ROOMY},
                        headers={"Accept": "text/event-stream"}) as response:
            assert response.status_code == 201
            assert response.headers["content-type"].startswith("text/event-stream")
            location = response.headers["location"]
            frames = sse_events(response)
            first = next(frames)
            assert (first["event"], first["data"]["payload"]) == ("input_echo", {"text": TICKS})
            tick = next(frames)
            assert (tick["event"], tick["data"]["payload"]["text"]) == ("console", "tick 0")
            # The first console line is here and the run is not over.
            execution_id = tick["data"]["execution_id"]
            assert location == f"/api/v1/executions/{execution_id}"
            assert api.get(f"/executions/{execution_id}").json()["status"] == "running"
            streamed = [first, tick, *frames]
        # The frames are the execution's event stream: id = seq, event = type, data = the event.
        events = api.get(f"/executions/{execution_id}/events").json()
        assert [f["data"] for f in streamed] == events
        assert [(f["id"], f["event"]) for f in streamed] == [(str(e["seq"]), e["type"]) for e in events]
        assert [e["payload"].get("text") for e in events[1:-1]] == [f"tick {i}" for i in range(30)]
        # Once the stream has ended, the execution is finished.
        execution = api.get(location.removeprefix("/api/v1")).json()
        assert (execution["status"], execution["kind"], execution["result"]["json"]) == ("ok", "run", "done")


def test_post_run_refused_before_it_starts_is_an_error_answer(daemon: Daemon) -> None:
    with httpx.Client(base_url=daemon.url + "/api/v1", timeout=60) as api:
        sse = {"Accept": "text/event-stream"}
        unknown = api.post("/run", json={"code": "1", "template_id": str(uuid.uuid4())}, headers=sse)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "TEMPLATE_NOT_FOUND"
        both = api.post("/run", json={"code": "1", "path": "x.js"}, headers=sse)
        assert both.status_code == 400 and both.json()["error"]["code"] == "VALIDATION_ERROR"
        # Without the header: the one JSON answer, as before.
        plain = api.post("/run", json={"code": "6 * 7"})
        assert plain.status_code == 201 and plain.json()["result"]["json"] == 42


# ----- vm-system run --server-url / --remote -----------------------------------------------


def test_a_remote_run_prints_console_lines_while_the_script_runs(daemon: Daemon) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VM_SYSTEM_URL", "VM_SYSTEM_TOKEN")}
    proc = subprocess.Popen([sys.executable, "-m", "supervisor.adapters.cli", "run", "-e", TICKS,
                             "--cpu-ms", "30000", "--wall-ms", "30000", "--server-url", daemon.url],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        id_line = proc.stderr.readline()
        assert id_line.startswith("[vm-system] execution "), id_line
        execution_id = id_line.split()[-1]
        assert proc.stdout.readline() == "tick 0\n"
        with httpx.Client(base_url=daemon.url + "/api/v1", timeout=60) as api:
            assert api.get(f"/executions/{execution_id}").json()["status"] == "running"
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "tick 0\n" + rest == "".join(f"tick {i}\n" for i in range(30)) + "'done'\n"
    assert err == ""


def test_run_json_is_one_document_embedded_and_remote(daemon: Daemon) -> None:
    code = "console.log('hi', {a: 1}); console.warn('careful'); ({answer: 42})"
    embedded = ok_json(vm("run", "-e", code, "--json"))
    remote = ok_json(vm("run", "-e", code, "--json", "--server-url", daemon.url))
    assert set(embedded) == set(remote) == {"execution_id", "status", "value", "error", "events",
                                            "metrics"}
    assert embedded["execution_id"] is None
    for key in ("status", "value", "error"):
        assert embedded[key] == remote[key], key
    assert embedded["value"]["json"] == {"answer": 42}
    assert [(e["type"], e["payload"]) for e in embedded["events"]] == \
        [(e["type"], e["payload"]) for e in remote["events"]]
    assert {frozenset(e) for e in embedded["events"] + remote["events"]} == {frozenset({"type", "payload", "ts"})}
    assert set(embedded["metrics"]) == set(remote["metrics"])
    assert ok_json(vm("exec", "get", remote["execution_id"], "--json", url=daemon.url))["kind"] == "run"
    # And the error side.
    failed = [ok_or(vm("run", "-e", "null.x", "--json", *extra)) for extra in ([], ["--server-url", daemon.url])]
    assert failed[0]["status"] == failed[1]["status"] == "error"
    assert failed[0]["error"]["name"] == failed[1]["error"]["name"] == "TypeError"
    assert set(failed[0]) == set(failed[1])


def ok_or(out: subprocess.CompletedProcess[str]) -> Any:
    assert out.returncode == 1, out.stderr
    return json.loads(out.stdout)


def test_vm_system_url_says_which_daemon_never_whether(daemon: Daemon) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    # Exported for the other commands: `run` still runs embedded.
    embedded = vm("run", "-e", "6 * 7", url=nowhere)
    assert (embedded.returncode, embedded.stdout, embedded.stderr) == (0, "42\n", "")
    # --remote goes to the daemon the environment names...
    missing = vm("run", "-e", "6 * 7", "--remote", url=nowhere)
    assert missing.returncode == 4 and missing.stdout == ""
    assert one_line(missing).startswith(f"vm-system: error: no vm-system daemon at {nowhere} ")
    remote = vm("run", "-e", "6 * 7", "--remote", url=daemon.url)
    assert remote.returncode == 0 and remote.stdout == "42\n"
    execution_id = one_line(remote).removeprefix("[vm-system] execution ")
    assert ok_json(vm("exec", "get", execution_id, "--json", url=daemon.url))["input"] == "6 * 7"
    # ... and --server-url wins over it.
    assert vm("run", "-e", "1", "--server-url", daemon.url, url=nowhere).returncode == 0
    text = " ".join(vm("run", "--help").stdout.split())
    assert "VM_SYSTEM_URL" in text and "--remote" in text


# ----- what a run prints ----------------------------------------------------------------------


def test_a_modules_value_is_its_namespace(tmp_path: Path) -> None:
    assert vm("run", "-e", "export const answer = 42", "--module").stdout == \
        "[Object: null prototype] { answer: 42 }\n"
    (tmp_path / "quiet.mjs").write_text("console.log('no exports')\n")
    assert vm("run", str(tmp_path / "quiet.mjs")).stdout == "no exports\n"


def test_exec_repl_and_run_file_print_the_execution_id(daemon: Daemon, tmp_path: Path) -> None:
    (tmp_path / "main.js").write_text("console.log('from a file'); 40 + 2\n")
    (tmp_path / "mod.mjs").write_text("export default 7\n")
    with httpx.Client(base_url=daemon.url + "/api/v1", timeout=60) as api:
        template = api.post("/templates", json={"name": f"ids-{uuid.uuid4().hex[:8]}"}).json()
        session = api.post("/sessions", json={"template_id": template["id"], "workspace_id": "ws",
                                              "base_commit_oid": "abc", "worktree_path": str(tmp_path)}).json()
    for args, stdout in ((["exec", "repl", session["id"], "console.log('x'); 1 + 1"], "x\n2\n"),
                         (["exec", "run-file", session["id"], "main.js"], "from a file\n42\n"),
                         (["exec", "run-file", session["id"], "mod.mjs"],
                          "[Object: null prototype] { default: 7 }\n")):
        out = vm(*args, url=daemon.url)
        assert (out.returncode, out.stdout) == (0, stdout), out.stderr
        execution_id = one_line(out).removeprefix("[vm-system] execution ")
        events = vm("exec", "events", execution_id, url=daemon.url)
        assert events.returncode == 0 and events.stdout.split()[:2] == ["1", "input_echo"]
