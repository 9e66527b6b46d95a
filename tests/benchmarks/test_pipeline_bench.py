"""The pipeline benchmark's harness: figures have the expected shape, the store check catches
lost or misordered events, and a wrong record fails a scenario instead of being timed.

No timing assertions: how fast anything runs is the benchmark's output, never a test verdict.
Run from the repository root (`python -m pytest tests/benchmarks`).
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from benchmarks import pipeline_bench as bench
from sandbox import Sandbox

RESULT_FIELDS = {"scenario", "description", "unit", "status", "error", "median_s", "p10_s",
                 "p90_s", "n_runs", "target_s", "met", "figures", "details"}
COUNT = 4  # executions in the hand-checked session record


def test_the_generated_library_is_70_kb_and_defines_its_global() -> None:
    library = bench.make_library()
    size = len(library.source.encode())
    assert bench.LIBRARY_BYTES - 1024 < size <= bench.LIBRARY_BYTES
    assert library.functions > 100 and library.rows == 400
    assert bench.make_library() == library  # deterministic: the same file every run
    with Sandbox() as sb:
        assert sb.eval(library.source).status == "ok"
        bench.outcome_expects(library.expected_check)(sb.eval(bench.LIBRARY_CHECK))


def test_quick_run_of_repl_and_spawn_reports_every_field(tmp_path: Path) -> None:
    report = bench.run_benchmark(quick=True, only=["repl-trivial", "spawn-70k"],
                                 directory=tmp_path)
    data = json.loads(json.dumps(report.to_dict()))  # JSON-serialisable as a whole
    assert data["benchmark"] == "pipeline" and data["mode"] == "quick"
    assert {"cpu_model", "cores", "usable_cores"} <= data["machine"].keys()
    assert {"python", "wasmtime", "sqlite"} <= data["versions"].keys()
    assert [r["scenario"] for r in data["results"]] == ["repl-trivial", "spawn-70k"]
    plans = {s.name: s.plan for s in bench.scenarios()}
    for row in data["results"]:
        assert RESULT_FIELDS <= row.keys()
        assert row["status"] == "ok", row["error"]
        assert row["n_runs"] == plans[row["scenario"]].quick_runs
        assert 0 < row["p10_s"] <= row["median_s"] <= row["p90_s"]
        assert isinstance(row["met"], bool)
        for figure in row["figures"]:
            assert 0 < figure["p10_s"] <= figure["median_s"] <= figure["p90_s"]
    repl, spawn = data["results"]
    assert len(repl["figures"]) == 3 and "Sandbox().eval" in repl["figures"][1]["label"]
    assert repl["details"]["pipeline_cost_s"] == pytest.approx(
        repl["median_s"] - repl["figures"][1]["median_s"])
    assert isinstance(repl["details"]["session_busy_refusals"], int)
    assert len(spawn["figures"]) == 4 and "70 KB" in spawn["figures"][0]["label"]
    assert report.ok
    assert not list(tmp_path.iterdir())  # the temporary databases are gone


def test_concurrency_harness_checks_the_store_and_reports_scaling(tmp_path: Path) -> None:
    scenario = bench.Scenario("concurrency-small", "2 threads × 20", "execution",
                              bench.concurrency_setup(threads=2, quick_per_session=20),
                              bench.Plan(2, 2, 1, 1), throughput=True)
    result = bench.run_scenario(scenario, quick=True, directory=tmp_path)
    assert result.status == "ok", result.error
    assert [f.stats.n for f in result.figures] == [2, 2, 2, 2]
    labels = [f.label for f in result.figures]
    assert "2 threads × 20" in labels[0] and "1 thread × 40" in labels[1]
    assert "no supervisor" in labels[2] and "no supervisor" in labels[3]
    details = result.details
    assert details["threads"] == 2 and details["executions_per_session"] == 20
    medians = [f.stats.median for f in result.figures]
    assert details["scaling_factor"] == pytest.approx(medians[1] / medians[0])
    assert details["engine_scaling_factor"] == pytest.approx(medians[3] / medians[2])
    assert isinstance(result.met, bool)
    row = result.to_dict()
    assert row["figures"][0]["per_second_median"] == pytest.approx(1 / row["median_s"])


def test_wrong_values_in_the_store_fail_the_scenario_untimed(tmp_path: Path) -> None:
    # The sessions run i + 1 instead of i: every value and console line is off by one.
    scenario = bench.Scenario(
        "concurrency-wrong", "a workload that computes the wrong thing", "execution",
        bench.concurrency_setup(threads=2, quick_per_session=5,
                                code=lambda i: f"console.log({i + 1}); {i + 1}"),
        bench.Plan(2, 2, 1, 1), throughput=True)
    result = bench.run_scenario(scenario, quick=True, directory=tmp_path)
    assert result.status == "wrong_result"
    assert result.failed is not None and "threads" in result.failed  # the first sampler
    assert "problems in the store" in (result.error or "")
    assert result.figures == [] and result.met is False


# ----- the event checker, on a real record --------------------------------------------------


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("record")
    with ExitStack() as stack:
        sup = bench.open_supervisor(stack, directory)
        template = sup.templates.create("record")
        session = sup.create_session(template.id, "ws", "0" * 40, str(directory))
        for i in range(COUNT):
            sup.repl(session.id, bench.workload_code(i))
        return bench.collect_record(sup, session.id, COUNT)


def _with_events(record: Any, index: int, events: list[Any]) -> Any:
    """A copy of the record where the execution run `index`-th has other events."""
    execution = list(reversed(record.executions))[index]
    return dataclasses.replace(record, events={**record.events, execution.id: events})


def _events(record: Any, index: int) -> list[Any]:
    return list(record.events[list(reversed(record.executions))[index].id])


def test_a_clean_record_passes(record: Any) -> None:
    assert len(record.executions) == COUNT
    assert bench.record_problems(record, COUNT) == []
    bench._raise_problems([])


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
    problems = bench.record_problems(corrupted, COUNT)
    assert problems, f"{name} went unnoticed"
    assert any(expected in p for p in problems), problems
    with pytest.raises(bench.CheckFailed, match="problems in the store"):
        bench._raise_problems(problems)


@pytest.fixture
def restored_logging() -> Any:
    """main() quiets structlog for the whole process, as a benchmark run should: undo it."""
    config = structlog.get_config()
    yield
    structlog.configure(**config)


@pytest.mark.usefixtures("restored_logging")
def test_cli_quick_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = bench.main(["--quick", "--quiet", "--only", "repl-trivial", "--json", str(out),
                       "--dir", str(tmp_path)])
    assert code == 0
    table = capsys.readouterr().out
    assert "repl-trivial" in table and "met?" in table and "cores" in table
    (row,) = json.loads(out.read_text(encoding="utf-8"))["results"]
    assert row["scenario"] == "repl-trivial" and row["status"] == "ok"
    assert RESULT_FIELDS <= row.keys()
