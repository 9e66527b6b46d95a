"""One execution through the whole pipeline: `sup.repl(sid, "1+1")` on a session of a real
SQLite-backed supervisor (execution row, events, finish, all persisted), against the engine
alone and native QuickJS in the same run."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.checks import outcome_expects
from benchmarks.engines import LIMITS, NATIVE, VM, NativeQuickJS
from benchmarks.harness import Measured, Scenario, Setup
from benchmarks.supervised import (
    BASE_COMMIT,
    WORKSPACE,
    BusyCounter,
    execution_expects,
    open_supervisor,
    repl_retrying,
    worktree,
)
from benchmarks.timing import CheckFailed, Plan, Sampler, Stats, format_seconds
from benchmarks.workloads import Workload
from sandbox import Sandbox

TRIVIAL = "1+1"
REPL = "vm-system: sup.repl(sid, '1+1'), persisted"
ENGINE_AFTER = "vm-system: Sandbox.eval('1+1') alone, one call per pipeline call"
ENGINE_BATCH = 20
ENGINE_WARM = f"vm-system: Sandbox.eval('1+1') alone, back-to-back ({ENGINE_BATCH} a sample)"
NATIVE_BATCH = 50


def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
    sup = open_supervisor(stack, directory)
    template = sup.templates.create("bench-repl")
    session_id = sup.create_session(template.id, WORKSPACE, BASE_COMMIT, worktree(directory)).id
    busy = BusyCounter()
    value_ok = execution_expects(2)

    def persisted(execution: Any) -> None:
        value_ok(execution)
        types = [e.type for e in sup.list_events(execution.id)]
        if types != ["input_echo", "value"]:
            raise CheckFailed(f"execution {execution.id} has events {types}, "
                              "expected ['input_echo', 'value']")

    sb = Sandbox(limits=LIMITS, auto_checkpoint=True)  # as a session runs it
    stack.callback(sb.close)
    native = NativeQuickJS()
    found = native.availability()
    trivial = Workload("trivial", "eval('1+1')", TRIVIAL, 2, Plan(1, 1), batch=NATIVE_BATCH)
    # The engine alone, twice: one call right after each pipeline call (the caches as the
    # pipeline leaves them, as for the evaluation inside a repl), and back-to-back in batches.
    rows = [
        Measured(VM, REPL, Sampler(lambda _: repl_retrying(sup, session_id, TRIVIAL, busy),
                                   check=persisted)),
        Measured(VM, ENGINE_AFTER, Sampler(lambda _: sb.eval(TRIVIAL), check=outcome_expects(2))),
        Measured(VM, ENGINE_WARM, Sampler(lambda _: sb.eval(TRIVIAL), check=outcome_expects(2),
                                          inner=ENGINE_BATCH)),
        Measured(NATIVE, f"{NATIVE}: ctx.eval('1+1') ({NATIVE_BATCH} a sample)",
                 native.sampler(trivial, stack) if found.present else None, found.note,
                 baseline=True, version=found.version),
    ]

    def details(stats: Mapping[str, Stats]) -> dict[str, Any]:
        return {"pipeline_cost_s": stats[REPL].median - stats[ENGINE_AFTER].median,
                "pipeline_cost_vs_warm_engine_s": stats[REPL].median - stats[ENGINE_WARM].median,
                "session_busy_refusals": busy.refusals}

    return Setup(rows, details=details)


def notes(d: Mapping[str, Any]) -> list[str]:
    lines = [f"pipeline-repl: the pipeline's own cost (repl − the engine alone) "
             f"{format_seconds(d['pipeline_cost_s'])} against the engine called once per "
             f"pipeline call, {format_seconds(d['pipeline_cost_vs_warm_engine_s'])} against it "
             "back-to-back"]
    if d.get("session_busy_refusals"):
        lines.append(f"pipeline-repl: {d['session_busy_refusals']} SESSION_BUSY refusals, "
                     "retried (the wait is in the figures)")
    return lines


def scenario() -> Scenario:
    return Scenario("pipeline-repl", "pipeline", "an execution through the whole pipeline, "
                    "persisted to SQLite", "execution", setup,
                    Plan(quick_runs=300, full_runs=5000, quick_warmup=30, full_warmup=300),
                    notes=notes)
