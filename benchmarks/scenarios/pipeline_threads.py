"""Several sessions driven from several threads: 4 threads each running 1,000 executions of
`console.log(i); i` on its own session, against 1 thread running the same 4 × 1,000 executions
session after session (fresh sessions every sample, made and closed outside the timed part),
with the supervisor in-process (`Supervisor`) and with the sessions in worker processes
(`ShardedSupervisor`, one worker per usable core, at least 2).
After every sample the store is read back: each execution must be there, in order, `ok`, with
exactly `input_echo`, `console`, `value` (seq 1..3, the right text and value). References: the
same evaluations on bare sandboxes (4 threads against 1), and native QuickJS in one thread.

The figure is executions per second; the scaling factor (4 threads / 1 thread) is under the
table, against what near-linear scaling would give on this machine's cores."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.checks import raise_problems, same_value
from benchmarks.engines import LIMITS, NATIVE, VM, NativeQuickJS
from benchmarks.harness import Measured, Scenario, Setup, SetupFactory
from benchmarks.supervised import (
    BASE_COMMIT,
    WORKSPACE,
    BusyCounter,
    close_sessions,
    collect_record,
    open_supervisor,
    record_problems,
    repl_retrying,
    workload_code,
    worktree,
)
from benchmarks.timing import CheckFailed, Plan, Sampler, Stats, machine_info
from sandbox import Sandbox

THREADS = 4

@dataclass
class _Round:
    session_ids: list[str]


def concurrency_setup(threads: int = THREADS, quick_per_session: int = 250,
                      full_per_session: int = 1000,
                      code: Callable[[int], str] = workload_code,
                      expected: Callable[[int], str] = workload_code) -> SetupFactory:
    """`threads` threads each running `per_session` executions on its own session, against one
    thread running the same executions on the same number of sessions, one session after the
    other. Each sample gets fresh sessions (made and closed outside the timed part) and is
    checked afterwards against the store (record_problems). `code` is what execution i runs;
    the check always expects workload_code(i)."""

    def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
        per_session = quick_per_session if quick else full_per_session
        if not 1 <= per_session <= 1000:
            raise ValueError("per_session must be within 1..1000 (one page of list_executions)")
        busy = BusyCounter()
        total = threads * per_session
        usable = machine_info()["usable_cores"] or 1
        workers = max(2, min(threads, usable))

        def supervised_rows(sup: Any, where: str) -> list[Measured]:
            """`threads` threads on their own sessions, and 1 thread doing the same work."""
            template = sup.templates.create(f"bench-concurrency-{len(where)}")
            tree = worktree(directory)
            live: list[str] = []
            stack.callback(close_sessions, sup, live)

            def new_sessions() -> _Round:
                ids = [sup.create_session(template.id, WORKSPACE, BASE_COMMIT, tree).id
                       for _ in range(threads)]
                live.extend(ids)
                return _Round(ids)

            def run_session(session_id: str) -> None:
                for i in range(per_session):
                    execution = repl_retrying(sup, session_id, code(i), busy)
                    if execution.status != "ok":  # cheap, and a failure stops the round early
                        raise CheckFailed(f"execution {execution.id} ended {execution.status}: "
                                          f"{execution.error}")

            def threaded(state: _Round) -> _Round:
                errors: list[BaseException] = []

                def worker(session_id: str) -> None:
                    try:
                        run_session(session_id)
                    except BaseException as exc:  # re-raised in the calling thread
                        errors.append(exc)

                runners = [threading.Thread(target=worker, args=(sid,), name=f"bench-{n}")
                           for n, sid in enumerate(state.session_ids)]
                for r in runners:
                    r.start()
                for r in runners:
                    r.join()
                if errors:
                    raise errors[0]
                return state

            def one_thread(state: _Round) -> _Round:
                for session_id in state.session_ids:
                    run_session(session_id)
                return state

            def verify(state: _Round) -> None:
                problems: list[str] = []
                for session_id in state.session_ids:
                    problems += record_problems(collect_record(sup, session_id, per_session),
                                                per_session, expected)
                raise_problems(problems, "problems in the store")

            def close_round(state: _Round) -> None:
                for session_id in state.session_ids:
                    sup.close_session(session_id)
                    live.remove(session_id)

            return [
                Measured(VM, f"vm-system: {where}{threads} threads × {per_session} executions "
                         f"({threads} sessions, 1 per thread)",
                         Sampler(threaded, before=new_sessions, after=close_round, check=verify,
                                 units=total)),
                Measured(VM, f"vm-system: {where}1 thread × {total} executions (the same "
                         f"{threads} sessions' work, in turn)",
                         Sampler(one_thread, before=new_sessions, after=close_round, check=verify,
                                 units=total)),
            ]

        in_process = supervised_rows(open_supervisor(stack, directory / "in-process"), "")
        sharded = supervised_rows(open_supervisor(stack, directory / "sharded", workers=workers),
                                  f"{workers} worker processes, ")

        # References: the same evaluations on bare sandboxes (no supervisor, no store), to tell
        # the engine's own scaling from the pipeline's.
        sandboxes = [Sandbox(limits=LIMITS, auto_checkpoint=True) for _ in range(threads)]
        for sb in sandboxes:
            stack.callback(sb.close)

        def engine_session(sb: Sandbox) -> int:
            wrong = 0
            for i in range(per_session):
                out = sb.eval(code(i))
                if out.status != "ok" or not same_value((out.value or {}).get("json"), i):
                    wrong += 1
            return wrong

        def engine_threaded(_: Any) -> int:
            wrong: list[int] = []
            workers = [threading.Thread(target=lambda sb=sb: wrong.append(engine_session(sb)))
                       for sb in sandboxes]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            if len(wrong) != threads:
                raise RuntimeError("an engine thread failed")
            return sum(wrong)

        def engine_one_thread(_: Any) -> int:
            return sum(engine_session(sb) for sb in sandboxes)

        def engine_ok(wrong: Any) -> None:
            if wrong:
                raise CheckFailed(f"{wrong} evaluations answered a wrong value")

        labels = (in_process[0].label, in_process[1].label,
                  f"vm-system: {threads} threads × {per_session} Sandbox.eval, no supervisor",
                  f"vm-system: 1 thread × {total} Sandbox.eval, no supervisor",
                  sharded[0].label, sharded[1].label)

        def details(stats: Mapping[str, Stats]) -> dict[str, Any]:
            return {"threads": threads, "executions_per_session": per_session,
                    "scaling_factor": stats[labels[1]].median / stats[labels[0]].median,
                    "engine_scaling_factor": stats[labels[3]].median / stats[labels[2]].median,
                    "workers": workers,
                    "sharded_scaling_factor": stats[labels[5]].median / stats[labels[4]].median,
                    # The sharded threads' throughput over the in-process single thread's: what
                    # a caller gains by moving from one process to worker processes.
                    "sharded_gain": stats[labels[1]].median / stats[labels[4]].median,
                    "linear_expectation": min(threads, usable),
                    "usable_cores": usable,
                    "session_busy_refusals": busy.refusals,
                    "executions_refused_at_least_once": busy.calls_refused}

        return Setup([
            *in_process,
            *sharded,
            Measured(VM, labels[2], Sampler(engine_threaded, check=engine_ok, units=total)),
            Measured(VM, labels[3], Sampler(engine_one_thread, check=engine_ok, units=total)),
            _native_row(stack, threads, per_session, code),
        ], details=details)

    return setup


def _native_row(stack: ExitStack, threads: int, per_session: int,
                code: Callable[[int], str] = workload_code) -> Measured:
    """Native QuickJS running the same evaluations (console to a Python callback) in one
    thread: the floor of an execution."""
    native = NativeQuickJS()
    found = native.availability()
    total = threads * per_session
    label = f"{NATIVE}: 1 thread × {total} ctx.eval, console to a Python callback"
    if not found.present:
        return Measured(NATIVE, label, None, found.note, baseline=True)
    ctx = native.driver(stack).open()
    sources = [code(i) for i in range(per_session)]

    def run(_: Any) -> int:
        wrong = 0
        for _session in range(threads):
            for i, source in enumerate(sources):
                if not same_value(ctx.js.eval(source), i):
                    wrong += 1
            if ctx.lines != [str(i) for i in range(per_session)]:
                wrong += 1
            ctx.lines.clear()
        return wrong

    def ok(wrong: Any) -> None:
        if wrong:
            raise CheckFailed(f"{wrong} evaluations answered a wrong value")

    return Measured(NATIVE, label, Sampler(run, check=ok, units=total), baseline=True,
                    version=found.version)


def notes(d: Mapping[str, Any], name: str = "pipeline-threads") -> list[str]:
    lines = [f"{name}: scaling factor {d['threads']} threads / 1 thread = "
             f"{d['scaling_factor']:.2f}× in one process, {d['sharded_scaling_factor']:.2f}× "
             f"with the sessions in {d['workers']} worker processes (near-linear would be "
             f"~{d['linear_expectation']}× on {d['usable_cores']} usable cores); worker "
             f"processes with {d['threads']} threads against one process with 1 thread: "
             f"{d['sharded_gain']:.2f}×; the engine alone (Sandbox.eval, no supervisor) "
             f"{d['engine_scaling_factor']:.2f}×; every event of every execution checked in "
             "the store"]
    if d.get("session_busy_refusals"):
        lines.append(f"{name}: {d['session_busy_refusals']} SESSION_BUSY refusals, "
                     "retried (the wait is in the figures)")
    return lines


def scenario(threads: int = THREADS, quick_per_session: int = 250,
             full_per_session: int = 1000,
             code: Callable[[int], str] = workload_code, name: str = "pipeline-threads",
             what: str = "executions",
             expected: Callable[[int], str] = workload_code) -> Scenario:
    """`threads` × `full_per_session` executions (quick: `quick_per_session`); `code(i)` is what
    execution i runs, `expected(i)` what the store must hold as its input (a test makes them
    differ to see the check fail)."""
    return Scenario(name, "pipeline", f"{threads} threads × N {what} on {threads} sessions "
                    "against 1 thread doing the same; every event checked in the store",
                    "execution",
                    concurrency_setup(threads, quick_per_session, full_per_session, code, expected),
                    Plan(quick_runs=2, full_runs=7, quick_warmup=1, full_warmup=1),
                    throughput=True, notes=lambda d: notes(d, name))
