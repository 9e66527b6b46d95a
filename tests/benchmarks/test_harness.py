"""The benchmark harness with stand-in samplers: a wrong answer is a failure and is never timed,
an absent engine is reported absent, ratios are taken against the baseline, and the timing
primitives divide and report the way the figures say.

No timing assertions: how fast anything runs is the benchmark's output, never a test verdict.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from benchmarks.harness import Measured, Scenario, Setup, run_scenario
from benchmarks.runner import run_benchmark
from benchmarks.scenarios import all_scenarios, select
from benchmarks.timing import (
    CheckFailed,
    CountedSampler,
    Plan,
    Sampler,
    SelfTimedSampler,
    interleave,
    percentile,
    summarize,
)


def expects(value: Any) -> Callable[[Any], None]:
    def check(got: Any) -> None:
        if got != value:
            raise CheckFailed(f"expected {value!r}, got {got!r}")

    return check


def counting(answer: Callable[[], Any], calls: list[str], label: str) -> Callable[[Any], Any]:
    def call(_: Any) -> Any:
        calls.append(label)
        return answer()

    return call


FAKE_PLAN = Plan(4, 4, 2, 2)


def scenario_of(rows: Callable[[], list[Measured]], plan: Plan = FAKE_PLAN,
                **kwargs: Any) -> Scenario:
    return Scenario("fake", "engine", "a stand-in", "call",
                    lambda stack, directory, quick: Setup(rows(), **kwargs), plan)


def test_a_wrong_answer_is_a_failure_and_is_not_timed(tmp_path: Path) -> None:
    calls: list[str] = []

    def rows() -> list[Measured]:
        return [
            Measured("right", "right: 2", Sampler(counting(lambda: 2, calls, "right"),
                                                  check=expects(2)), baseline=True),
            Measured("wrong", "wrong: 3", Sampler(counting(lambda: 3, calls, "wrong"),
                                                  check=expects(2))),
        ]

    result = run_scenario(scenario_of(rows), quick=True, directory=tmp_path)
    right, wrong = result.figures
    assert result.status == "wrong_result" and not result.ok
    assert wrong.status == "wrong_result" and wrong.stats is None and wrong.ratio is None
    assert "expected 2, got 3" in (wrong.error or "") and "wrong: 3" in (result.error or "")
    assert calls.count("wrong") == 1  # its first, checked warm-up call: nothing timed
    assert right.status == "ok" and right.stats is not None and right.stats.n == 4
    assert calls.count("right") == 2 + 4  # warm-up, then the samples
    data = json.loads(json.dumps(result.to_dict()))
    assert data["figures"][1]["median_s"] is None and data["figures"][1]["n"] == 0


def test_a_wrong_answer_while_timing_discards_that_row_only(tmp_path: Path) -> None:
    answers = iter([2, 2, 2, 99] + [2] * 20)  # right while warming up, wrong in a sample

    def rows() -> list[Measured]:
        return [
            Measured("drifting", "drifting", Sampler(lambda _: next(answers), check=expects(2))),
            Measured("steady", "steady", Sampler(lambda _: 2, check=expects(2)), baseline=True),
        ]

    result = run_scenario(scenario_of(rows), quick=True, directory=tmp_path)
    drifting, steady = result.figures
    assert result.status == "wrong_result"
    assert drifting.stats is None and "99" in (drifting.error or "")
    assert steady.stats is not None and steady.stats.n == 4 and steady.ratio == 1.0


def test_an_engine_that_raises_is_an_error(tmp_path: Path) -> None:
    def boom(_: Any) -> Any:
        raise RuntimeError("engine exploded")

    result = run_scenario(scenario_of(lambda: [Measured("x", "x", Sampler(boom))]), quick=True,
                          directory=tmp_path)
    assert result.status == "error" and "RuntimeError: engine exploded" in (result.error or "")


def test_an_absent_engine_is_reported_absent_and_does_not_fail(tmp_path: Path) -> None:
    def rows() -> list[Measured]:
        return [
            Measured("base", "base", Sampler(lambda _: 1), baseline=True),
            Measured("other", "other", Sampler(lambda _: 1)),
            Measured("missing", "missing", None, "not installed (pip install it)"),
        ]

    result = run_scenario(scenario_of(rows), quick=True, directory=tmp_path)
    base, other, missing = result.figures
    assert result.status == "ok" and result.error is None
    assert missing.status == "absent" and missing.stats is None
    assert missing.note == "not installed (pip install it)"
    assert base.ratio == 1.0 and other.ratio == pytest.approx(other.stats.median / base.stats.median)


def test_a_set_up_failure_fails_the_scenario_without_figures(tmp_path: Path) -> None:
    def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
        raise CheckFailed("the library did not load")

    result = run_scenario(Scenario("s", "engine", "d", "call", setup, Plan(2, 2)), quick=True,
                          directory=tmp_path)
    assert result.status == "wrong_result" and result.figures == []
    assert result.error == "the library did not load"


def test_details_notes_and_shutdown_problems(tmp_path: Path) -> None:
    scenario = Scenario(
        "s", "http", "d", "call",
        lambda stack, directory, quick: Setup(
            [Measured("e", "row", Sampler(lambda _: 1))],
            details=lambda stats: {"median": stats["row"].median},
            shutdown_problems=lambda: ["the daemon exited 1 after SIGTERM"]),
        Plan(2, 2, 1, 1), notes=lambda d: [f"median was {d['median']}"])
    result = run_scenario(scenario, quick=True, directory=tmp_path)
    assert result.details["median"] == result.figures[0].stats.median
    assert result.notes[0].startswith("median was")
    assert result.status == "error" and "exited 1" in (result.error or "")
    assert result.figures[0].stats is not None  # the figures stay, the run is not ok


def test_the_runner_reports_machine_versions_engines_and_fails_on_a_wrong_answer(
        tmp_path: Path) -> None:
    good = scenario_of(lambda: [Measured("e", "ok", Sampler(lambda _: 2, check=expects(2)))])
    bad = scenario_of(lambda: [Measured("e", "bad", Sampler(lambda _: 3, check=expects(2)))])
    ticks: list[str] = []

    class Recorder:
        def start(self, total: int) -> None:
            ticks.append(f"start {total}")

        def scenario(self, name: str) -> None:
            ticks.append(name)

        def advance(self, steps: int = 1) -> None:
            ticks.append(f"+{steps}")

    report = run_benchmark([good], quick=True, directory=tmp_path, progress=Recorder())
    data = json.loads(json.dumps(report.to_dict()))
    assert report.ok and data["mode"] == "quick"
    assert {"cpu_model", "cores", "usable_cores"} <= data["machine"].keys()
    assert {"python", "wasmtime", "quickjs", "node", "sqlite"} <= data["versions"].keys()
    assert {"vm-system", "native QuickJS", "quickjs-rs", "wasmjs", "Node.js"} \
        <= data["engines"].keys()
    assert all({"present", "version", "note"} <= e.keys() for e in data["engines"].values())
    assert ticks[0] == "start 5" and sum(int(t[1:]) for t in ticks if t[0] == "+") == 5
    assert not run_benchmark([good, bad], quick=True, directory=tmp_path).ok
    assert not list(tmp_path.iterdir())  # the temporary directories are gone


def test_scenarios_are_chosen_by_name_layer_or_group() -> None:
    suite = all_scenarios()
    names = [s.name for s in suite]
    assert len(names) == len(set(names)) == 27
    assert [s.name for s in select(suite, ["eval-fib-25"])] == ["eval-fib-25"]
    assert {s.name for s in select(suite, ["host-call"])} == {"host-call-sync", "host-call-async"}
    assert [s.name for s in select(suite, ["timer-turn"])] == ["timer-turn"]
    assert {s.name for s in select(suite, ["module"])} == {"module-fs", "module-database", "module-exec",
                                                          "module-fetch"}
    assert {s.name for s in select(suite, ["http"])} == {"http-repl", "http-throughput"}
    assert {s.name for s in select(suite, ["sandbox"])} == {"sandbox-spawn", "sandbox-big-heap"}
    assert {s.name for s in select(suite, ["pipeline-spawn"])} == {"pipeline-spawn-70k", "pipeline-spawn-lodash"}
    assert len(select(suite, ["eval"])) == 7 and select(suite, None) == suite
    with pytest.raises(ValueError, match="unknown scenario nope"):
        select(suite, ["nope"])


# ----- the timing primitives --------------------------------------------------------------------


def test_quantiles() -> None:
    values = [float(v) for v in range(1, 12)]  # 1..11
    assert percentile(values, 0.1) == pytest.approx(2.0)
    assert percentile(values, 0.9) == pytest.approx(10.0)
    stats = summarize(list(reversed(values)))
    assert (stats.n, stats.median, stats.min, stats.max) == (11, 6.0, 1.0, 11.0)
    assert summarize([5.0]).p10 == summarize([5.0]).p90 == 5.0


def test_a_self_timed_sampler_takes_the_engines_own_time() -> None:
    sampler = SelfTimedSampler(lambda _: (0.5, "answer"), check=expects("answer"), inner=5,
                               units=2)
    sampler.warm_up(2)
    assert sampler.sample() == pytest.approx(0.05)  # 0.5 s over 5 calls of 2 units
    with pytest.raises(CheckFailed, match="expected 'other'"):
        SelfTimedSampler(lambda _: (0.5, "answer"), check=expects("other")).sample()
    with pytest.raises(CheckFailed, match="reported 0"):
        SelfTimedSampler(lambda _: (0, "answer")).sample()


def test_counted_sampler_divides_by_the_units_the_result_reports() -> None:
    seen: list[str] = []
    sampler = CountedSampler(lambda state: state, before=lambda: {"done": 4},
                             after=lambda _: seen.append("after"),
                             check=lambda r: seen.append("check"), count=lambda r: r["done"])
    rounds: list[int] = []
    (stats,) = interleave([sampler], runs=3, warmup=1, on_round=lambda: rounds.append(1))
    assert stats.n == 3 and stats.median > 0 and len(rounds) == 3
    assert seen == ["check", "after"] * 4  # warm-up included; check before after
    with pytest.raises(CheckFailed, match="no unit"):
        CountedSampler(lambda _: 0).sample()
    with pytest.raises(ValueError):
        CountedSampler(lambda _: 1, inner=2)
