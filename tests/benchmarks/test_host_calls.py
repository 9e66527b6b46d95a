"""The host-call scenarios (issue 13): every engine that runs them gets the same host function
and is checked on the answer its calls add up to; a host function that answers wrongly fails
the row untimed; an engine without what a workload needs runs a labelled equivalent or is
reported absent with the reason, never something passed off as the workload.

No timing assertions: how fast anything runs is the benchmark's output, never a test verdict.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from benchmarks.comparison import comparison
from benchmarks.engines import NATIVE, Engine, NativeQuickJS, NodeJs, QuickJsRs, VmSystemEngine
from benchmarks.harness import ScenarioResult, run_scenario
from benchmarks.report import note_lines
from benchmarks.runner import engines_found
from benchmarks.scenarios import host_call_async, host_call_sync, timer_turn
from benchmarks.timing import BenchReport, Plan
from benchmarks.workloads import HostCallable, Workload

TINY = Plan(1, 1, 1, 1)
# Small enough for a quick test, past the first few calls (a shim that worked once only
# would fail the sum).
CALLS = 20


def shrunk(workload: Workload, calls: int = CALLS) -> Workload:
    """The workload as defined, with `calls` calls and one sample."""
    total = str(workload.units)
    return replace(workload, code=workload.code.replace(total, str(calls)),
                   expected=calls * (calls + 1) // 2, units=calls, plan=TINY)


def in_process_engines() -> list[Engine]:
    engines: list[Engine] = [VmSystemEngine(), NativeQuickJS(), QuickJsRs()]
    return [e for e in engines if e.availability().present]


def run(workload: Workload, engines: list[Engine], tmp_path: Path) -> ScenarioResult:
    return run_scenario(comparison(workload, engines, name=workload.name), quick=True,
                        directory=tmp_path)


@pytest.mark.parametrize("module", [host_call_sync, host_call_async, timer_turn])
def test_every_engine_that_runs_the_workload_gives_the_sum(module: ModuleType,
                                                          tmp_path: Path) -> None:
    workload = shrunk(module.WORKLOAD)
    result = run(workload, in_process_engines(), tmp_path)
    assert result.ok, result.error
    for figure in result.figures:
        if figure.status == "absent":
            assert figure.note, figure
        else:
            assert figure.status == "ok" and figure.stats is not None, figure


@pytest.mark.parametrize("module", [host_call_sync, host_call_async])
def test_a_host_function_that_answers_wrongly_fails_its_rows_untimed(module: ModuleType,
                                                                    tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []

    def off_by_one(a: int, b: int) -> int:
        calls.append((a, b))
        return a + b + 1

    workload = shrunk(module.WORKLOAD)
    (host,) = workload.host
    workload = replace(workload, host=(replace(host, fn=off_by_one),))
    result = run(workload, in_process_engines(), tmp_path)
    assert result.status == "wrong_result"
    timed = [f for f in result.figures if f.status != "absent"]
    assert timed and all(f.status == "wrong_result" and f.stats is None for f in timed)
    assert all(f"expected value {CALLS * (CALLS + 1) // 2}" in (f.error or "") for f in timed)
    # The checked warm-up evaluation only, once per engine: nothing was timed.
    assert len(calls) == CALLS * len(timed)
    assert calls[:2] == [(0, 1), (1, 1)]


def test_async_host_functions_are_coroutine_functions_around_the_same_function() -> None:
    import asyncio
    import inspect

    sync = HostCallable("add", host_call_sync.add)
    assert sync.offered() is host_call_sync.add
    offered = HostCallable("addAsync", host_call_sync.add, is_async=True).offered()
    assert inspect.iscoroutinefunction(offered) and asyncio.run(offered(2, 3)) == 5


def test_what_each_engine_does_with_each_workload_is_said() -> None:
    sync, async_, timers = (m.WORKLOAD for m in (host_call_sync, host_call_async, timer_turn))
    native, rs, vm, node = NativeQuickJS(), QuickJsRs(), VmSystemEngine(), NodeJs()
    for workload in (sync, async_, timers):
        assert vm.runs(workload).present and vm.runs(workload).equivalent is None
        found = node.runs(workload)
        assert not found.present and "another process" in (found.note or "")
    if native.availability().present:
        assert native.runs(sync).equivalent is None
        for workload, what in ((async_, "Promise.resolve"), (timers, "setTimeout a queue")):
            found = native.runs(workload)
            assert found.present and what in (found.equivalent or "")
            assert "nearest equivalent" in (found.note or "")
    if rs.availability().present:
        assert rs.runs(sync).present and rs.runs(async_).present
        found = rs.runs(timers)
        assert not found.present and "no setTimeout" in (found.note or "")


def test_a_rejected_or_unsettled_promise_is_a_wrong_result(tmp_path: Path) -> None:
    engines = [e for e in in_process_engines() if e.name in ("vm-system", NATIVE)]
    rejected = Workload("rejects", "a Promise rejected", "(async () => { throw new Error('no') })()",
                        1, TINY, settles=True)
    result = run(rejected, engines, tmp_path / "rejected")
    assert result.status in ("wrong_result", "error")
    assert all(f.status == "wrong_result" for f in result.figures), result.figures
    native = NativeQuickJS()
    if native.availability().present:
        never = Workload("never", "a Promise never settled", "new Promise(() => {})", 1, TINY,
                         settles=True)
        result = run(never, [native], tmp_path / "never")
        (figure,) = result.figures
        assert figure.status == "wrong_result" and "did not settle" in (figure.error or "")


def test_the_notes_say_which_scenarios_an_installed_engine_is_absent_from(
        tmp_path: Path) -> None:
    workload = shrunk(timer_turn.WORKLOAD)
    result = run(workload, [VmSystemEngine(), NativeQuickJS(), QuickJsRs(), NodeJs()], tmp_path)
    assert result.ok, result.error
    report = BenchReport("t", "quick", "now", 0.0, {}, {}, {}, [result],
                         extra={"engines": engines_found()})
    lines = note_lines(report)
    found = engines_found()
    if found["quickjs-rs"]["present"]:
        assert any(line.startswith("quickjs-rs: absent (timer-turn): no timers")
                   for line in lines), lines
    if found[NATIVE]["present"]:
        assert any(line.startswith(f"timer-turn: {NATIVE}: no timers of its own")
                   for line in lines), lines
