"""Graceful shutdown: SIGTERM with a script still running, then a restart on the same database."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from http_daemon import (
    Background,
    checked_client,
    make_worktree,
    new_session,
    new_template,
    repl,
    start_daemon,
    wait_for_running,
)

from store import Store

GRACE_S = 1.0
SCRIPT_S = 5.0
LONG = (f"(function(){{ const t0 = Date.now(); while (Date.now() - t0 < {int(SCRIPT_S * 1000)}) {{}} }})(); "
        "globalThis.after_long = true; 'finished'")


def _post(url: str, body: dict) -> httpx.Response:
    with httpx.Client(timeout=60) as client:
        return client.post(url, json=body)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", ["0", "2"], ids=["in-process", "2-workers"])
def test_sigterm_cancels_running_work_and_a_restart_restores_the_session(tmp_path: Path, workers: str) -> None:
    worktree = make_worktree(tmp_path)
    first = start_daemon(tmp_path / "first", "--shutdown-grace", str(GRACE_S), "--workers", workers)
    try:
        with checked_client(first.api) as api:
            template = new_template(api, limits={"cpu_ms": 30000, "wall_ms": 30000})
            session = new_session(api, template["id"], worktree)
            assert repl(api, session["id"], "globalThis.saved = 'yes'; globalThis.n = 41")["status"] == "ok"
            call = Background(lambda: _post(f"{first.api}/executions/repl",
                                            {"session_id": session["id"], "input": LONG}))
            running = wait_for_running(api, session["id"])
            # A one-shot run in flight too: it has no session, and is cancelled all the same.
            oneshot = Background(lambda: _post(f"{first.api}/run",
                                               {"code": LONG, "limits": {"cpu_ms": 30000, "wall_ms": 30000}}))
            deadline = time.monotonic() + 10
            while api.get("/runtime/summary").json()["executions_running"] < 2:
                assert time.monotonic() < deadline, "the one-shot run never started"
                time.sleep(0.01)
    except BaseException:
        first.stop()
        raise
    signalled = time.monotonic()
    first.signal()
    rc = first.wait()
    took = time.monotonic() - signalled
    # Each request in flight is answered by the supervisor (cancelled after the grace), never
    # cut off by the HTTP server's own shutdown timeout (which answered a plain-text 500).
    answers = [call.result(), oneshot.result()]
    for answer in answers:
        assert answer.status_code == 201, (answer.status_code, answer.text[:200])
        assert answer.json()["status"] == "cancelled", answer.json()
    # It did not wait for the 5 s script: the execution below ends `cancelled` (one the shutdown
    # waited for would end `ok`) and after the restart the script's last line never ran
    # (`typeof after_long`). Normally the grace period (1 s) plus the HTTP server's own drain
    # (uvicorn: grace + 1 s) take ~2 s.
    # generous: far below the 60 s a stuck drain would wait (STOP_TIMEOUT_S); a hang guard
    assert took < 30, f"shutdown took {took:.2f}s"

    with Store.open(first.db) as store:
        for answer in answers:  # what the client was told is what is stored
            stored = store.get_execution(answer.json()["id"])
            assert (stored.status, stored.error) == ("cancelled", answer.json()["error"])
        execution = store.get_execution(running["id"])
        assert execution.status == "cancelled", execution
        assert execution.error is not None and execution.error["kind"] == "cancelled"
        assert execution.ended_at is not None
        events = store.list_events(running["id"])
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert events[0].type == "input_echo" and events[-1].type == "limit"
        assert store.get_session(session["id"]).status == "ready", "a live session survives a restart"

    second = start_daemon(tmp_path / "second", "--workers", workers, db=first.db)
    try:
        with checked_client(second.api) as api:
            restored = api.get(f"/sessions/{session['id']}").json()
            assert restored["status"] == "ready"
            assert session["id"] in api.get("/runtime/summary").json()["active_session_ids"]
            execution = repl(api, session["id"], "[saved, n + 1, typeof after_long]")
            assert execution["status"] == "ok"
            assert execution["result"]["json"] == ["yes", 42, "undefined"]
            listed = api.get("/executions", params={"session_id": session["id"]}).json()
            assert running["id"] in [e["id"] for e in listed]
            assert api.get(f"/executions/{running['id']}").json()["status"] == "cancelled"
    finally:
        rc2 = second.stop()
    # last, so that a wrong exit code does not hide the checks above
    assert (rc, rc2) == (0, 0), f"the daemons exited {rc} and {rc2} after SIGTERM (expected 0)"


@pytest.mark.parametrize("value", ["-1", "two"])
def test_a_bad_worker_count_is_one_line_and_exit_2(tmp_path: Path, value: str) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "supervisor.adapters.cli", "serve", "--db",
                           str(tmp_path / "db.sqlite"), "--listen", "127.0.0.1:0", "--workers", value],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert any("--workers" in line for line in lines), done.stderr
