"""Every engine on real workloads, through the same checks the benchmark uses: the answers
engines give are accepted, an engine that computes the wrong thing is reported as a failure and
never timed (the other engines still are), and an engine that is not installed is reported absent
with the reason.

No timing assertions: how fast anything runs is the benchmark's output, never a test verdict.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from benchmarks.checks import same_value
from benchmarks.comparison import comparison
from benchmarks.engines import NATIVE, Engine, all_engines
from benchmarks.engines.base import Driver, DriverEngine
from benchmarks.engines.node import NodeJs
from benchmarks.engines.vm import VmSystemEngine, _SandboxDriver
from benchmarks.harness import run_scenario
from benchmarks.scenarios import eval_fib
from benchmarks.timing import CheckFailed, Plan
from benchmarks.workloads import Answer, Workload, verify

TINY = Plan(2, 2, 1, 1)


def small(workload: Workload) -> Workload:
    # The workload as defined, with two samples: the harness is under test, not the speed.
    from dataclasses import replace

    return replace(workload, plan=TINY)


class _WrongDriver(_SandboxDriver):
    """vm-system evaluating fib(24) when asked for fib(25): an engine that computes wrongly."""

    calls = 0

    def evaluate(self, ctx: Any, code: str) -> Any:
        type(self).calls += 1
        return super().evaluate(ctx, code.replace("fib(25)", "fib(24)"))


class WrongEngine(VmSystemEngine):
    def driver(self, stack: ExitStack) -> Driver:
        return _WrongDriver(True)


class MissingEngine(DriverEngine):
    name = "missing-engine"
    module = "no_such_module_for_the_bench"
    absent_note = "PyPI `missing-engine` is not installed"

    def driver(self, stack: ExitStack) -> Driver:
        raise AssertionError("an absent engine is never driven")


def test_a_wrong_engine_is_a_failure_untimed_and_the_others_are_timed(tmp_path: Path) -> None:
    _WrongDriver.calls = 0
    engines: list[Engine] = [WrongEngine(name="wrong vm-system"), VmSystemEngine(), *[
        e for e in all_engines() if e.name == NATIVE]]
    result = run_scenario(comparison(small(eval_fib.WORKLOAD), engines), quick=True,
                          directory=tmp_path)
    wrong, vm, native = result.figures
    assert result.status == "wrong_result" and not result.ok
    assert wrong.status == "wrong_result" and wrong.stats is None and wrong.ratio is None
    assert "expected value 75025, got 46368" in (wrong.error or "")
    assert _WrongDriver.calls == 1  # the checked warm-up call only: nothing was timed
    assert vm.status == native.status == "ok" and vm.stats and native.stats
    assert native.baseline and native.ratio == 1.0 and vm.ratio is not None


def test_an_absent_engine_is_reported_absent(tmp_path: Path) -> None:
    result = run_scenario(comparison(small(eval_fib.WORKLOAD), [VmSystemEngine(),
                                                               MissingEngine()]),
                          quick=True, directory=tmp_path)
    vm, missing = result.figures
    assert result.ok and vm.status == "ok"
    assert missing.status == "absent" and missing.stats is None
    assert "not installed" in (missing.note or "") and "no_such_module" in (missing.note or "")


def test_node_absent_without_node_on_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    found = NodeJs().availability()
    assert not found.present and "not on the PATH" in (found.note or "")


def test_a_node_request_that_never_answers_fails_instead_of_hanging() -> None:
    from benchmarks.engines.node import NodeError, NodeProcess, node_path

    node = node_path()
    if node is None:
        pytest.skip("node is not on the PATH")
    proc = NodeProcess(node, timeout_s=1.0)
    try:
        ctx = proc.ask({"op": "open", "prelude": None})["ctx"]
        assert proc.ask({"op": "run", "ctx": ctx, "code": "6 * 7", "inner": 1})["value"] == 42
        with pytest.raises(NodeError, match="no answer within 1 s"):
            proc.ask({"op": "run", "ctx": ctx, "code": "for (;;) {}", "inner": 1})
    finally:
        proc.close()


def test_the_checks_compare_values_console_lines_and_after() -> None:
    wl = Workload("w", "d", "x", 4499998500000, TINY, after="y", after_expected="1.0.0",
                  console=("line 0", "line 1"))
    verify(wl, Answer(4499998500000.0, ["line 0", "line 1"], "1.0.0"))  # floats from natives
    with pytest.raises(CheckFailed, match="console line 1"):
        verify(wl, Answer(4499998500000, ["line 0", "line 2"], "1.0.0"))
    with pytest.raises(CheckFailed, match="2 console lines, got 1"):
        verify(wl, Answer(4499998500000, ["line 0"], "1.0.0"))
    with pytest.raises(CheckFailed, match="after the call"):
        verify(wl, Answer(4499998500000, ["line 0", "line 1"], None))
    assert not same_value(True, 1) and not same_value(1, True)  # a boolean is not a number
    assert same_value([1, {"a": 2.0}], [1, {"a": 2}]) and not same_value([1], [1, 2])
