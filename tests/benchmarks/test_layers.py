"""The pieces the layer scenarios are built of: the daemon under test and its client, the checks
of what the daemon and the store answered (every lost, misordered or wrong execution or event is
reported), how installed `vm-system` commands are found, and the profile's phase split; plus a
wrong answer in a layer scenario failing it untimed.

No timing assertions: how fast anything runs is the benchmark's output, never a test verdict.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks import daemon as daemon_mod
from benchmarks import processes, profiles, supervised
from benchmarks.checks import raise_problems
from benchmarks.harness import run_scenario
from benchmarks.profiles import summarize_profile
from benchmarks.scenarios import http_repl, pipeline_threads
from benchmarks.supervised import BusyCounter
from benchmarks.timing import CheckFailed

SESSION = "00000000-0000-4000-8000-000000000001"
COUNT = 4  # executions in the hand-checked session record


def raise_problems_in_store(problems: list[str]) -> None:
    raise_problems(problems, "problems in the store")


# ----- a wrong answer in a layer scenario --------------------------------------------------------


def test_a_wrong_repl_value_fails_the_http_scenario_untimed(tmp_path: Path) -> None:
    result = run_scenario(http_repl.scenario(expected=3), quick=True, directory=tmp_path,
                          max_runs=2)
    repl, health, _native = result.figures
    assert result.status == "wrong_result" and not result.ok
    assert repl.status == "wrong_result" and repl.stats is None
    assert "value 2, expected 3" in (repl.error or "")
    assert health.status == "ok" and health.stats is not None  # the other rows are still timed
    assert result.notes == []  # the daemon stopped cleanly


def test_wrong_values_in_the_store_fail_the_threads_scenario_untimed(tmp_path: Path) -> None:
    # The sessions run i + 1 instead of i: every value and console line is off by one.
    scenario = pipeline_threads.scenario(threads=2, quick_per_session=5,
                                         code=lambda i: f"console.log({i + 1}); {i + 1}")
    result = run_scenario(scenario, quick=True, directory=tmp_path, max_runs=1)
    threaded, one_thread, *_ = result.figures
    assert result.status == "wrong_result"
    assert threaded.stats is None and one_thread.stats is None
    assert "problems in the store" in (threaded.error or "")


# ----- the daemon and the connection ------------------------------------------------------------


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[daemon_mod.Daemon]:
    d = daemon_mod.Daemon(tmp_path_factory.mktemp("daemon"))
    try:
        yield d
    finally:
        d.stop()
    assert d.exit_code == 0 and d.shutdown_problems() == []


def test_the_connection_is_kept_alive_and_reopened_when_idle(
        daemon: daemon_mod.Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = daemon_mod.Connection(daemon.url)
    try:
        for _ in range(3):
            reply = conn.request("GET", daemon_mod.HEALTH_PATH, headers={"X-Request-Id": "kept-alive"})
            assert reply.status == 200 and reply.json() == {"status": "ok"}
        assert conn.opened == 1
        monkeypatch.setattr(daemon_mod, "IDLE_REOPEN_S", -1.0)  # every connection counts as idle
        conn.request("GET", daemon_mod.HEALTH_PATH)
        assert conn.opened == 2
    finally:
        conn.close()
    assert len(daemon.access_durations_s(daemon_mod.HEALTH_PATH, "kept-alive")) == 3


def test_set_up_helpers_and_the_store_listing(daemon: daemon_mod.Daemon, tmp_path: Path) -> None:
    conn = daemon_mod.Connection(daemon.url)
    try:
        template_id = daemon_mod.create_template(conn, "helpers")
        session_id = daemon_mod.create_session(conn, template_id, tmp_path)
        busy = BusyCounter()
        body = daemon_mod.repl_body(session_id, "1+1")
        check = daemon_mod.repl_expects(session_id, "1+1", 2)
        for _ in range(3):
            check(daemon_mod.post_repl(conn, body, daemon_mod.JSON_HEADERS, busy))
        listed = daemon_mod.list_executions(conn, session_id)
        assert daemon_mod.store_problems(listed, 3, session_id, "1+1", 2) == []
        assert daemon_mod.store_problems(listed, 4, session_id, "1+1", 2) == [
            f"session {session_id}: 3 executions stored, 4 answered 201"]
        with pytest.raises(CheckFailed, match="expected 3"):
            daemon_mod.repl_expects(session_id, "1+1", 3)(daemon_mod.post_repl(conn, body, {}, busy))
        daemon_mod.close_session(conn, session_id)
        with pytest.raises(daemon_mod.ApiError, match="expected 201"):
            daemon_mod.create_template(conn, "helpers")  # the name is taken: 409
    finally:
        conn.close()
    assert daemon.cpu_seconds() > 0


# ----- checks, without a daemon -----------------------------------------------------------------


def execution(**changes: Any) -> dict[str, Any]:
    return {"id": "e1", "session_id": SESSION, "kind": "repl", "input": "1+1", "status": "ok",
            "result": {"type": "number", "preview": "2", "json": 2}, "error": None, **changes}


@pytest.mark.parametrize(("changes", "expected"), [
    ({"status": "error", "error": {"message": "boom"}}, "ended error"),
    ({"result": {"json": 3}}, "value 3, expected 2"),
    ({"result": {"json": True}}, "value True, expected 2"),  # a boolean is not the number
    ({"result": None}, "value None"),
    ({"input": "2+0"}, "expected a repl of '1+1'"),
    ({"kind": "run_file"}, "expected a repl"),
    ({"session_id": "other"}, "session other"),
])
def test_a_wrong_execution_is_reported(changes: dict[str, Any], expected: str) -> None:
    assert daemon_mod.execution_problems(execution(), SESSION, "1+1", 2) == []
    problems = daemon_mod.store_problems([execution(), execution(**changes)], 2, SESSION, "1+1", 2)
    assert len(problems) == 1 and expected in problems[0], problems
    with pytest.raises(CheckFailed, match="1 problems"):
        raise_problems(problems)


def test_a_lost_execution_is_reported() -> None:
    problems = daemon_mod.store_problems([execution()], 2, SESSION, "1+1", 2)
    assert problems == [f"session {SESSION}: 1 executions stored, 2 answered 201"]


def test_a_reply_is_checked_for_status_and_body() -> None:
    check = daemon_mod.repl_expects(SESSION, "1+1", 2)
    check(daemon_mod.Reply(201, json.dumps(execution()).encode()))
    with pytest.raises(CheckFailed, match="expected 201, got 409"):
        check(daemon_mod.Reply(409, b'{"error": {"code": "SESSION_BUSY"}}'))
    with pytest.raises(CheckFailed, match="not JSON"):
        check(daemon_mod.Reply(201, b"<html>"))
    with pytest.raises(CheckFailed, match="value 3"):
        check(daemon_mod.Reply(201, json.dumps(execution(result={"json": 3})).encode()))
    assert daemon_mod.Reply(409, b'{"error": {"code": "SESSION_BUSY"}}').error_code() == "SESSION_BUSY"
    assert daemon_mod.Reply(500, b"oops").error_code() is None


# ----- processes ----------------------------------------------------------------------------------


def test_the_real_help_command_passes_its_check() -> None:
    (module, *_rest) = processes.vm_system_commands(["--help"], "--help", "usage: vm-system",
                                                    "prefix")
    assert module.argv[:3] == [sys.executable, "-m", "supervisor.adapters.cli"]
    processes.process_expects("usage: vm-system", "prefix")(processes.run_process(module.argv))


def test_installed_scripts_tell_a_pyenv_shim_from_the_console_script(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shims, bin_dir = tmp_path / "shims", tmp_path / "bin"
    shims.mkdir()
    bin_dir.mkdir()
    shim, stale_shim = shims / "vm-system", tmp_path / "stale" / "vm-system"
    stale_shim.parent.mkdir()
    script = bin_dir / "vm-system"
    # pyenv's shim (abridged) before a pyenv whose `which` leads to the console script, and one
    # before a pyenv leading to another installation; a console script whose shebang merely
    # mentions pyenv.
    for root, target in (("ours", script), ("other", tmp_path / "elsewhere")):
        pyenv = tmp_path / root / "libexec" / "pyenv"
        pyenv.parent.mkdir(parents=True)
        pyenv.write_text(f'#!/bin/sh\n[ "$1" = which ] && echo "{target}"\n')
        pyenv.chmod(0o755)
    shim.write_text(f'#!/usr/bin/env bash\nexec "{tmp_path}/ours/libexec/pyenv" exec "$program" "$@"\n')
    stale_shim.write_text(f'#!/usr/bin/env bash\nexec "{tmp_path}/other/libexec/pyenv" exec '
                          '"$program" "$@"\n')
    script.write_text("#!/root/.pyenv/versions/3.11.7/bin/python3.11\nfrom supervisor.adapters.cli"
                      ".main import main\n")
    for path in (shim, stale_shim, script):
        path.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), str(stale_shim.parent), str(shims),
                                                str(bin_dir)]))
    found = processes.installed_scripts()
    assert found[:2] == [(str(script), "console script"), (str(shim), "pyenv shim")]
    assert str(stale_shim) not in [p for p, _ in found]
    labels = [c.label for c in processes.vm_system_commands(["--help"], "--help", "usage")]
    assert labels[:3] == ["python -m supervisor.adapters.cli --help",
                          "vm-system --help (console script)", "vm-system --help (pyenv shim)"]


# ----- the event checker, on a real record --------------------------------------------------


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("record")
    with ExitStack() as stack:
        sup = supervised.open_supervisor(stack, directory)
        template = sup.templates.create("record")
        session = sup.create_session(template.id, "ws", "0" * 40, str(directory))
        for i in range(COUNT):
            sup.repl(session.id, supervised.workload_code(i))
        return supervised.collect_record(sup, session.id, COUNT)


def _with_events(record: Any, index: int, events: list[Any]) -> Any:
    """A copy of the record where the execution run `index`-th has other events."""
    execution = list(reversed(record.executions))[index]
    return dataclasses.replace(record, events={**record.events, execution.id: events})


def _events(record: Any, index: int) -> list[Any]:
    return list(record.events[list(reversed(record.executions))[index].id])


def test_a_clean_record_passes(record: Any) -> None:
    assert len(record.executions) == COUNT
    assert supervised.record_problems(record, COUNT) == []
    raise_problems_in_store([])


def _corruptions(record: Any) -> dict[str, tuple[Any, str]]:
    """Each a corrupted copy of the record and a piece of the problem it must produce."""
    echo, console, value = _events(record, 1)
    newest_first = list(record.executions)
    swapped = newest_first[:]
    swapped[0], swapped[1] = swapped[1], swapped[0]
    return {
        "console event lost": (_with_events(record, 1, [echo, value]), "events"),
        "events misordered": (_with_events(record, 1, [echo, value, console]), "events"),
        "seq renumbered": (_with_events(record, 1, [echo, dataclasses.replace(console, seq=3),
                                                    dataclasses.replace(value, seq=2)]), "events"),
        "wrong console text": (_with_events(record, 1, [echo, dataclasses.replace(
            console, payload={"level": "log", "text": "7"}), value]), "text="),
        "wrong value json": (_with_events(record, 1, [echo, console, dataclasses.replace(
            value, payload={**value.payload, "json": True})]), "json="),
        "event of another execution": (_with_events(record, 1, [echo, dataclasses.replace(
            console, execution_id="x"), value]), "belongs to"),
        "event timed backwards": (_with_events(record, 1, [echo, dataclasses.replace(
            console, ts=echo.ts - timedelta(seconds=1)), value]), "timed before"),
        "execution lost": (dataclasses.replace(record, executions=newest_first[1:]),
                           "executions stored"),
        "executions misordered": (dataclasses.replace(record, executions=swapped), "input"),
        "execution not ok": (dataclasses.replace(record, executions=[
            dataclasses.replace(newest_first[0], status="error")] + newest_first[1:]), "ended"),
    }


@pytest.mark.parametrize("name", ["console event lost", "events misordered", "seq renumbered",
                                  "wrong console text", "wrong value json",
                                  "event of another execution", "event timed backwards",
                                  "execution lost", "executions misordered", "execution not ok"])
def test_a_corrupted_record_is_reported(record: Any, name: str) -> None:
    corrupted, expected = _corruptions(record)[name]
    problems = supervised.record_problems(corrupted, COUNT)
    assert problems, f"{name} went unnoticed"
    assert any(expected in p for p in problems), problems
    with pytest.raises(CheckFailed, match="problems in the store"):
        raise_problems_in_store(problems)


def test_a_profile_is_split_into_phases_by_its_innermost_known_frame() -> None:
    raw = "\n".join([
        "_run_module_as_main (<frozen runpy>:198);H11Protocol.data_received "
        "(uvicorn/protocols/http/h11_impl.py:1) 3",
        "Thread._bootstrap (threading.py:1);_routes.<locals>.repl "
        "(supervisor/adapters/http/app.py:1);Supervisor.repl (supervisor/core.py:1);"
        "Sandbox.eval (sandbox/sandbox.py:1);dumps (json/__init__.py:1) 2",
        "Thread._bootstrap (threading.py:1);_routes.<locals>.repl "
        "(supervisor/adapters/http/app.py:1);Supervisor.repl (supervisor/core.py:1);"
        "ExecutionsMixin.finish_execution (store/executions.py:1) 4",
        "Thread._bootstrap (threading.py:1) 1",
        "not a sample line",
    ])
    total, phases, whole_repl = summarize_profile(raw)
    assert total == 10 and whole_repl == 6
    assert phases == {"uvicorn + h11 (HTTP/1.1 parsing and writing)": 3,
                      "engine: sandbox/, wasmtime": 2, "store: store/ (SQLite)": 4, "other": 1}


def test_the_in_process_profiles_run(tmp_path: Path) -> None:
    assert "warm evaluations of '1+1'" in profiles.profile_trivial_eval(calls=20)
    assert "console lines each" in profiles.profile_console(calls=1)
    assert "sb.clone() then close()" in profiles.profile_spawn(calls=5)
    repl = profiles.profile_repl(calls=20, directory=tmp_path)
    assert "sup.repl, in all" in repl and "of which COMMIT" in repl
