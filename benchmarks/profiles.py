"""Where the time goes: profiles of the three paths the docs explain (`vm-system bench
--profile eval|console|spawn|repl|daemon`). cProfile for the in-process paths (it inflates Python-level work
relative to C calls: read it for the shape of the cost, and the benchmark for its size), py-spy
on the daemon's process under load."""

from __future__ import annotations

import cProfile
import io
import pstats
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.daemon import (
    JSON_HEADERS,
    Connection,
    create_session,
    create_template,
    post_repl,
    repl_body,
    start_daemon,
    worktree,
)
from benchmarks.engines import LIMITS
from benchmarks.supervised import (
    BASE_COMMIT,
    WORKSPACE,
    BusyCounter,
    open_supervisor,
    repl_retrying,
)
from benchmarks.supervised import worktree as session_worktree
from benchmarks.timing import CheckFailed, format_seconds
from sandbox import Sandbox

TRIVIAL = "1+1"
CONSOLE_LINES = 10_000
DAEMON_THREADS = 8


def _cprofile(header: str, run: Callable[[], object], calls: int, top: int) -> str:
    """`run` called `calls` times under cProfile; functions sorted by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        run()
    profiler.disable()
    out = io.StringIO()
    out.write(header + "\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def profile_trivial_eval(calls: int = 20_000, *, auto_checkpoint: bool = False, top: int = 30) -> str:
    """cProfile of warm sb.eval('1+1')."""
    with Sandbox(limits=LIMITS, auto_checkpoint=auto_checkpoint) as sb:
        for _ in range(500):
            sb.eval(TRIVIAL)
        return _cprofile(f"{calls} warm evaluations of {TRIVIAL!r}, "
                         f"auto_checkpoint={auto_checkpoint}", lambda: sb.eval(TRIVIAL), calls, top)


def profile_console(calls: int = 20, *, top: int = 25) -> str:
    """cProfile of an evaluation printing 10,000 console lines."""
    code = f"{{ for (let i = 0; i < {CONSOLE_LINES}; i++) console.log('line', i); 0 }}"
    with Sandbox(limits=LIMITS) as sb:
        sb.eval(code)
        return _cprofile(f"{calls} evaluations printing {CONSOLE_LINES} console lines each",
                         lambda: sb.eval(code), calls, top)


def profile_spawn(calls: int = 2000, *, top: int = 25) -> str:
    """cProfile of Sandbox() (made and closed) and of sb.clone() (made and closed)."""
    base = Sandbox(limits=LIMITS)
    try:
        Sandbox(limits=LIMITS).close()

        def fresh() -> None:
            Sandbox(limits=LIMITS).close()

        def clone() -> None:
            base.clone().close()

        return (_cprofile(f"{calls} × Sandbox(limits) then close()", fresh, calls, top) + "\n"
                + _cprofile(f"{calls} × sb.clone() then close()", clone, calls, top))
    finally:
        base.close()


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
                                        session_worktree(Path(tmp))).id
        busy = BusyCounter()
        for _ in range(500):
            repl_retrying(sup, session_id, TRIVIAL, busy)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            repl_retrying(sup, session_id, TRIVIAL, busy)
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



# A sample belongs to the phase of its innermost frame matching one of these (in this order).
_DAEMON_PHASES = (
    ("engine: sandbox/, wasmtime", ("sandbox/", "wasmtime/")),
    ("store: store/ (SQLite)", ("store/",)),
    ("response JSON (http/json.py: records, json.dumps)", ("adapters/http/json.py",)),
    ("middleware, route handler", ("adapters/http/middleware.py", "adapters/http/app.py")),
    ("supervisor core (the rest of sup.repl)", ("supervisor/",)),
    ("access log (structlog)", ("structlog/",)),
    ("FastAPI + pydantic (routing, body validation)", ("fastapi/", "pydantic")),
    ("starlette", ("starlette/",)),
    ("thread hop (anyio worker threads, queue)", ("anyio/", "concurrent/futures/", "queue.py")),
    ("uvicorn + h11 (HTTP/1.1 parsing and writing)", ("uvicorn/", "h11/")),
    ("asyncio event loop", ("asyncio/", "selectors.py")),
)
_WHOLE_REPL = "Supervisor.repl (supervisor/core.py"


def _phase_of(frames: Sequence[str]) -> str:
    for frame in reversed(frames):
        for phase, markers in _DAEMON_PHASES:
            if any(m in frame for m in markers):
                return phase
    return "other"


def summarize_profile(raw: str) -> tuple[int, dict[str, int], int]:
    """py-spy's raw (folded) output: (samples, samples per phase, samples inside sup.repl)."""
    total, whole_repl = 0, 0
    phases: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        n = int(count)
        total += n
        phase = _phase_of(frames)
        phases[phase] = phases.get(phase, 0) + n
        if any(_WHOLE_REPL in f for f in frames):
            whole_repl += n
    return total, phases, whole_repl


def profile_daemon(seconds: float = 10.0, *, threads: int = DAEMON_THREADS,
                   directory: Path | None = None) -> str:
    """py-spy (`--gil`: the thread holding the GIL) on a daemon under the throughput workload:
    where the daemon's Python time goes, by phase."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not on PATH (pip install py-spy)")
    with tempfile.TemporaryDirectory(prefix="http-profile-", dir=directory) as tmp, \
            ExitStack() as stack:
        daemon = start_daemon(stack, Path(tmp) / "daemon")
        control = Connection(daemon.url)
        stack.callback(control.close)
        template_id = create_template(control, "bench-profile")
        tree = worktree(Path(tmp))
        ids = [create_session(control, template_id, tree) for _ in range(threads)]
        stop = threading.Event()
        answered = [0] * threads
        failures: list[str] = []
        busy = BusyCounter()

        def worker(k: int) -> None:
            conn = Connection(daemon.url)
            body = repl_body(ids[k], TRIVIAL)
            try:
                while not stop.is_set():
                    reply = post_repl(conn, body, JSON_HEADERS, busy)
                    if reply.status != 201:
                        raise CheckFailed(f"expected 201, got {reply.describe()}")
                    answered[k] += 1
            except Exception as exc:  # reported below
                failures.append(f"thread {k}: {exc}")
            finally:
                conn.close()

        workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        time.sleep(1.0)  # warm
        out_path = Path(tmp) / "profile.txt"
        before, t0 = sum(answered), time.perf_counter()
        try:
            recorded = subprocess.run(
                [spy, "record", "--pid", str(daemon.pid), "--duration", str(max(1, round(seconds))),
                 "--rate", "250", "--gil", "--nonblocking", "--format", "raw",
                 "--output", str(out_path)],
                capture_output=True, text=True, timeout=seconds + 60, check=False)
        finally:
            during, elapsed = sum(answered) - before, time.perf_counter() - t0
            stop.set()
            for w in workers:
                w.join()
        if recorded.returncode != 0 or not out_path.exists():
            raise RuntimeError(f"py-spy failed: {recorded.stderr.strip()[-500:]}")
        if failures:
            raise CheckFailed("; ".join(failures[:3]))
        total, phases, whole_repl = summarize_profile(out_path.read_text(encoding="utf-8"))
    lines = [f"py-spy --gil on the daemon ({elapsed:.1f} s, {threads} client threads on their own "
             f"sessions, {during} executions of {TRIVIAL!r}, {during / elapsed:,.0f}/s); "
             f"{total} samples of the thread holding the GIL", ""]
    for phase, n in sorted(phases.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {100 * n / max(total, 1):5.1f}%  {phase}")
    lines += ["", f"  {100 * whole_repl / max(total, 1):5.1f}%  inside sup.repl (engine, store and "
              "core together: the pipeline)"]
    return "\n".join(lines)
