"""The HTTP and process benchmark's harness: figures have the expected shape, every answer is
checked, a wrong answer fails its scenario untimed, and the daemon under test starts and stops
cleanly.

No timing assertions: how fast anything runs is the benchmark's output, never a test verdict.
Run from the repository root (`python -m pytest tests/benchmarks`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from benchmarks import http_bench as bench
from benchmarks.timing import CheckFailed, CountedSampler, Sampler, interleave

RESULT_FIELDS = {"scenario", "description", "unit", "status", "error", "failed", "median_s",
                 "p10_s", "p90_s", "n_runs", "target_s", "met", "runs", "warmup", "figures",
                 "details"}
SESSION = "00000000-0000-4000-8000-000000000001"


def small_latency(**kwargs: Any) -> bench.Scenario:
    return bench.Scenario("latency-small", "a few checked repl requests", "request",
                          bench.latency_setup(**kwargs), bench.Plan(5, 5, 2, 2))


def small_throughput(**kwargs: Any) -> bench.Scenario:
    kwargs = {"threads": 2, "quick_window_s": 0.3, **kwargs}
    return bench.Scenario("throughput-small", "2 threads, short windows", "execution",
                          bench.throughput_setup(**kwargs), bench.Plan(2, 2, 1, 1),
                          throughput=True)


# ----- the HTTP scenarios against a real daemon ---------------------------------------------------


def test_quick_http_scenarios_report_every_field(tmp_path: Path) -> None:
    report = bench.run_benchmark(quick=True, suite=[small_latency(), small_throughput()],
                                 directory=tmp_path)
    data = json.loads(json.dumps(report.to_dict()))  # JSON-serialisable as a whole
    assert data["benchmark"] == "http" and data["mode"] == "quick"
    assert {"cpu_model", "cores", "usable_cores"} <= data["machine"].keys()
    assert {"python", "uvicorn", "h11", "httptools"} <= data["versions"].keys()
    latency, throughput = data["results"]
    for row in data["results"]:
        assert RESULT_FIELDS <= row.keys()
        assert row["status"] == "ok", row["error"]
        assert row["n_runs"] == (5 if row is latency else 2)
        assert isinstance(row["met"], bool)
        for figure in row["figures"]:
            assert 0 < figure["p10_s"] <= figure["median_s"] <= figure["p90_s"]
    assert report.ok

    assert [f["target_s"] for f in latency["figures"]] == [bench.LATENCY_TARGET_S, None]
    assert "GET /health" in latency["figures"][1]["label"]
    details = latency["details"]
    assert details["connections_opened"] == 1  # kept alive through warm-up and samples
    # The daemon's access log saw every repl request (warm-up included) under the bench's id.
    assert details["daemon_repl_duration"]["n"] >= 5
    assert details["daemon_health_duration"]["n"] >= 5
    assert details["outside_daemon_middleware_s"] == pytest.approx(
        latency["median_s"] - details["daemon_repl_duration"]["median_s"])
    assert "shutdown_problems" not in details  # SIGTERM: exit 0, no error logged

    (figure,) = throughput["figures"]
    assert figure["per_second_median"] == pytest.approx(1 / figure["median_s"])
    assert figure["target_per_second"] == pytest.approx(bench.THROUGHPUT_TARGET_PER_S)
    details = throughput["details"]
    assert details["threads"] == 2 and details["stored_equals_201s"] is True
    assert len(details["executions_per_window"]) == 2 and min(details["executions_per_window"]) > 0
    assert details["daemon_cpu_cores"] > 0 and details["latency_under_load"]["n"] > 0
    assert "shutdown_problems" not in details
    assert not list(tmp_path.iterdir())  # the temporary databases are gone


def test_a_wrong_repl_value_fails_the_latency_scenario_untimed(tmp_path: Path) -> None:
    result = bench.run_scenario(small_latency(expected=3), quick=True, directory=tmp_path)
    assert result.status == "wrong_result"
    assert result.failed is not None and "POST /executions/repl" in result.failed
    assert "expected 3" in (result.error or "")
    assert result.figures == [] and result.met is False and not result.ok


def test_a_wrong_repl_value_fails_the_throughput_scenario_untimed(tmp_path: Path) -> None:
    result = bench.run_scenario(small_throughput(code="1+2"), quick=True, directory=tmp_path)
    assert result.status == "wrong_result", result.error
    assert "expected 2" in (result.error or "")
    assert result.figures == [] and result.met is False


def test_a_failing_request_is_an_error_not_a_figure(tmp_path: Path) -> None:
    # A session id of the wrong shape: the daemon answers 400, never 201.
    def setup(stack: ExitStack, directory: Path, quick: bool) -> bench.Setup:
        daemon = bench.start_daemon(stack, directory)
        conn = bench.Connection(daemon.url)
        stack.callback(conn.close)
        check = bench.repl_expects("not-a-uuid", "1+1", 2)
        busy = bench.BusyCounter()
        body = bench.repl_body("not-a-uuid", "1+1")
        return bench.Setup([bench.Measured(
            "bad session", Sampler(lambda _: bench.post_repl(conn, body, bench.JSON_HEADERS, busy),
                                   check=check))], shutdown_problems=daemon.shutdown_problems)

    scenario = bench.Scenario("bad", "a request the daemon refuses", "request", setup,
                              bench.Plan(3, 3, 1, 1))
    result = bench.run_scenario(scenario, quick=True, directory=tmp_path)
    assert result.status == "wrong_result" and "expected 201, got 400" in (result.error or "")
    assert result.figures == []


# ----- the daemon and the connection ------------------------------------------------------------


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bench.Daemon]:
    d = bench.Daemon(tmp_path_factory.mktemp("daemon"))
    try:
        yield d
    finally:
        d.stop()
    assert d.exit_code == 0 and d.shutdown_problems() == []


def test_the_connection_is_kept_alive_and_reopened_when_idle(
        daemon: bench.Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = bench.Connection(daemon.url)
    try:
        for _ in range(3):
            reply = conn.request("GET", bench.HEALTH_PATH, headers={"X-Request-Id": "kept-alive"})
            assert reply.status == 200 and reply.json() == {"status": "ok"}
        assert conn.opened == 1
        monkeypatch.setattr(bench, "IDLE_REOPEN_S", -1.0)  # every connection counts as idle
        conn.request("GET", bench.HEALTH_PATH)
        assert conn.opened == 2
    finally:
        conn.close()
    assert len(daemon.access_durations_s(bench.HEALTH_PATH, "kept-alive")) == 3


def test_set_up_helpers_and_the_store_listing(daemon: bench.Daemon, tmp_path: Path) -> None:
    conn = bench.Connection(daemon.url)
    try:
        template_id = bench.create_template(conn, "helpers")
        session_id = bench.create_session(conn, template_id, tmp_path)
        busy = bench.BusyCounter()
        body = bench.repl_body(session_id, "1+1")
        check = bench.repl_expects(session_id, "1+1", 2)
        for _ in range(3):
            check(bench.post_repl(conn, body, bench.JSON_HEADERS, busy))
        listed = bench.list_executions(conn, session_id)
        assert bench.store_problems(listed, 3, session_id, "1+1", 2) == []
        assert bench.store_problems(listed, 4, session_id, "1+1", 2) == [
            f"session {session_id}: 3 executions stored, 4 answered 201"]
        with pytest.raises(CheckFailed, match="expected 3"):
            bench.repl_expects(session_id, "1+1", 3)(bench.post_repl(conn, body, {}, busy))
        bench.close_session(conn, session_id)
        with pytest.raises(bench.ApiError, match="expected 201"):
            bench.create_template(conn, "helpers")  # the name is taken: 409
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
    assert bench.execution_problems(execution(), SESSION, "1+1", 2) == []
    problems = bench.store_problems([execution(), execution(**changes)], 2, SESSION, "1+1", 2)
    assert len(problems) == 1 and expected in problems[0], problems
    with pytest.raises(CheckFailed, match="1 problems"):
        bench._raise_problems(problems)


def test_a_lost_execution_is_reported() -> None:
    problems = bench.store_problems([execution()], 2, SESSION, "1+1", 2)
    assert problems == [f"session {SESSION}: 1 executions stored, 2 answered 201"]


def test_a_reply_is_checked_for_status_and_body() -> None:
    check = bench.repl_expects(SESSION, "1+1", 2)
    check(bench.Reply(201, json.dumps(execution()).encode()))
    with pytest.raises(CheckFailed, match="expected 201, got 409"):
        check(bench.Reply(409, b'{"error": {"code": "SESSION_BUSY"}}'))
    with pytest.raises(CheckFailed, match="not JSON"):
        check(bench.Reply(201, b"<html>"))
    with pytest.raises(CheckFailed, match="value 3"):
        check(bench.Reply(201, json.dumps(execution(result={"json": 3})).encode()))
    assert bench.Reply(409, b'{"error": {"code": "SESSION_BUSY"}}').error_code() == "SESSION_BUSY"
    assert bench.Reply(500, b"oops").error_code() is None


# ----- processes ----------------------------------------------------------------------------------


def python_command(label: str, code: str, target: bool = True) -> bench.Command:
    return bench.Command(label, [sys.executable, "-c", code], target)


@pytest.mark.parametrize(("code", "status", "message"), [
    ("print(2)", "ok", None),
    ("print(3)", "wrong_result", "expected stdout '2', got '3'"),
    ("import sys; print(2); sys.exit(4)", "wrong_result", "exit status 4"),
])
def test_a_process_scenario_checks_exit_status_and_output(tmp_path: Path, code: str, status: str,
                                                          message: str | None) -> None:
    commands = [python_command("measured", code),
                python_command("reference: python -c pass", "pass", target=False)]
    scenario = bench.Scenario("process", "a python process", "process",
                              bench.process_setup([], "", "2", "exact", commands=lambda: commands),
                              bench.Plan(2, 2, 1, 1))
    result = bench.run_scenario(scenario, quick=True, directory=tmp_path)
    assert result.status == status, result.error
    if message is None:
        assert [f.label for f in result.figures] == ["measured", "reference: python -c pass"]
        assert [f.target_s for f in result.figures] == [bench.PROCESS_TARGET_S, None]
        assert result.figures[1].met is None and isinstance(result.met, bool)
    else:
        assert message in (result.error or "") and result.failed == "measured"
        assert result.figures == []


def test_the_real_help_command_passes_its_check() -> None:
    (module, *_rest) = bench.cli_commands(["--help"], "--help")
    assert module.argv[:3] == [sys.executable, "-m", "supervisor.adapters.cli"]
    bench.process_expects("usage: vm-system", "prefix")(bench._run_process(module.argv))


def test_installed_scripts_tell_a_pyenv_shim_from_the_console_script(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shims, bin_dir = tmp_path / "shims", tmp_path / "bin"
    shims.mkdir()
    bin_dir.mkdir()
    shim = shims / "vm-system"
    # pyenv's shim (abridged), and a console script whose shebang merely mentions pyenv.
    shim.write_text('#!/usr/bin/env bash\nexec "/root/.pyenv/libexec/pyenv" exec "$program" "$@"\n')
    script = bin_dir / "vm-system"
    script.write_text("#!/root/.pyenv/versions/3.11.7/bin/python3.11\nfrom supervisor.adapters"
                      ".cli import main\n")
    for path in (shim, script):
        path.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), str(shims), str(bin_dir)]))
    found = bench.installed_scripts()
    assert found[:2] == [(str(script), "console script"), (str(shim), "pyenv shim")]
    labels = [c.label for c in bench.cli_commands(["--help"], "--help")]
    assert labels[:3] == ["python -m supervisor.adapters.cli --help",
                          "vm-system --help (console script)", "vm-system --help (pyenv shim)"]
    assert labels[-1] == "reference: python -c pass"


# ----- the harness ------------------------------------------------------------------------------


def test_a_shutdown_problem_makes_a_measured_scenario_an_error(tmp_path: Path) -> None:
    def setup(stack: ExitStack, directory: Path, quick: bool) -> bench.Setup:
        return bench.Setup([bench.Measured("noop", Sampler(lambda _: None), 1.0)],
                           shutdown_problems=lambda: ["the daemon exited 1 after SIGTERM"])

    result = bench.run_scenario(bench.Scenario("s", "d", "call", setup, bench.Plan(2, 2, 1, 1)),
                                quick=True, directory=tmp_path)
    assert result.status == "error" and "exited 1" in (result.error or "")
    assert len(result.figures) == 1  # the figures stay, the run is not ok
    assert result.details["shutdown_problems"] == ["the daemon exited 1 after SIGTERM"]


def test_counted_sampler_divides_by_the_units_the_result_reports() -> None:
    seen: list[str] = []
    sampler = CountedSampler(lambda state: state, before=lambda: {"done": 4},
                             after=lambda _: seen.append("after"),
                             check=lambda r: seen.append("check"), count=lambda r: r["done"])
    (stats,) = interleave([sampler], runs=3, warmup=1)
    assert stats.n == 3 and stats.median > 0
    assert seen == ["check", "after"] * 4  # warm-up included; check before after
    empty = CountedSampler(lambda _: 0)
    with pytest.raises(CheckFailed, match="no unit"):
        empty.sample()
    with pytest.raises(ValueError):
        CountedSampler(lambda _: 1, inner=2)


def test_the_report_renders_failures_and_rates(tmp_path: Path) -> None:
    failed = bench.run_scenario(small_latency(expected=3), quick=True, directory=tmp_path / "a")
    report = bench.BenchReport("http", "quick", "now", 1.0, {
        "cpu_model": "cpu", "cores": 2, "usable_cores": 2, "platform": "p",
        "load_average": [0.0, 0.0, 0.0]}, {"python": "3"}, {}, [failed])
    text = bench.render_report(report)
    assert "FAILED (wrong_result)" in text and "expected 3" in text and "met?" in text


def test_cli_quick_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = bench.main(["--quick", "--quiet", "--only", "repl-latency", "--json", str(out),
                       "--dir", str(tmp_path)])
    assert code == 0
    table = capsys.readouterr().out
    assert "repl-latency" in table and "met?" in table and "duration_ms" in table
    (row,) = json.loads(out.read_text(encoding="utf-8"))["results"]
    assert row["scenario"] == "repl-latency" and row["status"] == "ok"
    assert RESULT_FIELDS <= row.keys()
    assert bench.main(["--list"]) == 0
    assert "repl-throughput" in capsys.readouterr().out


def test_a_profile_is_split_into_phases_by_its_innermost_known_frame() -> None:
    raw = "\n".join([
        "_run_module_as_main (<frozen runpy>:198);H11Protocol.data_received "
        "(uvicorn/protocols/http/h11_impl.py:1) 3",
        "Thread._bootstrap (threading.py:1);_routes.<locals>.repl "
        "(supervisor/adapters/http_app.py:1);Supervisor.repl (supervisor/core.py:1);"
        "Sandbox.eval (sandbox/sandbox.py:1);dumps (json/__init__.py:1) 2",
        "Thread._bootstrap (threading.py:1);_routes.<locals>.repl "
        "(supervisor/adapters/http_app.py:1);Supervisor.repl (supervisor/core.py:1);"
        "ExecutionsMixin.finish_execution (store/executions.py:1) 4",
        "Thread._bootstrap (threading.py:1) 1",
        "not a sample line",
    ])
    total, phases, whole_repl = bench.summarize_profile(raw)
    assert total == 10 and whole_repl == 6
    assert phases == {"uvicorn + h11 (HTTP/1.1 parsing and writing)": 3,
                      "engine: sandbox/, wasmtime": 2, "store: store/ (SQLite)": 4, "other": 1}
