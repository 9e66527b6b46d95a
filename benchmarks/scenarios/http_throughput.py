"""REPL throughput over HTTP: 8 client threads for a fixed window (4 s; 1 s in quick mode), each
on its own session (so that no SESSION_BUSY is expected; one would be retried and counted) and
its own keep-alive connection, running `1+1` back to back. The figure is executions per second.
After every window the API must list, for each session, exactly as many executions as its
thread received 201s, each `ok` with value 2; every 16th response is also checked in the loop.
The client runs on the same cores as the daemon: the CPU both used is reported."""

from __future__ import annotations

import resource
import statistics
import threading
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.checks import raise_problems
from benchmarks.daemon import (
    CHECK_EVERY,
    HEALTH_PATH,
    JSON_HEADERS,
    MAX_PER_SESSION,
    ApiError,
    Connection,
    close_session,
    create_session,
    create_template,
    list_executions,
    post_repl,
    repl_body,
    repl_expects,
    spread,
    start_daemon,
    store_problems,
    worktree,
)
from benchmarks.engines import VM
from benchmarks.harness import Measured, Scenario, Setup, SetupFactory
from benchmarks.supervised import BusyCounter
from benchmarks.timing import (
    CheckFailed,
    CountedSampler,
    Plan,
    Stats,
    format_seconds,
    machine_info,
)

THREADS = 8
TRIVIAL = "1+1"


@dataclass
class Window:
    """One fixed-duration window of the throughput scenario: fresh sessions and connections."""

    session_ids: list[str]
    connections: list[Connection]
    answered: list[int]  # 201s per thread
    latencies: list[list[float]]
    failures: list[str] = field(default_factory=list)
    deadline: float = 0.0
    elapsed_s: float = 0.0
    daemon_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    capped: bool = False


def _process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def throughput_setup(threads: int = THREADS, quick_window_s: float = 1.0,
                     full_window_s: float = 4.0, code: str = TRIVIAL,
                     expected: Any = 2) -> SetupFactory:
    """`threads` client threads, each with its own session and keep-alive connection, running
    `code` back to back for a fixed window; checked afterwards against the API's listing."""

    def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
        window_s = quick_window_s if quick else full_window_s
        daemon = start_daemon(stack, directory)
        control = Connection(daemon.url)
        stack.callback(control.close)
        template_id = create_template(control, "bench-throughput")
        tree = worktree(directory)
        busy = BusyCounter()
        done: list[Window] = []  # every window checked, warm-up ones first
        live: list[Window] = []

        def open_window() -> Window:
            ids = [create_session(control, template_id, tree) for _ in range(threads)]
            conns = [Connection(daemon.url) for _ in ids]
            window = Window(ids, conns, [0] * threads, [[] for _ in ids])
            live.append(window)
            for conn in conns:  # connect outside the timed part
                if conn.request("GET", HEALTH_PATH).status != 200:
                    raise ApiError("GET /health failed")
            return window

        def close_window(window: Window) -> None:
            for conn in window.connections:
                conn.close()
            for session_id in window.session_ids:
                close_session(control, session_id)
            live.remove(window)

        def close_all() -> None:
            for window in list(live):
                close_window(window)

        stack.callback(close_all)  # runs before the daemon stops (LIFO)

        def run(window: Window) -> Window:
            stop = threading.Event()
            start = threading.Barrier(threads + 1)

            def worker(k: int) -> None:
                conn, session_id = window.connections[k], window.session_ids[k]
                body = repl_body(session_id, code)
                headers = dict(JSON_HEADERS)
                check = repl_expects(session_id, code, expected)
                latencies = window.latencies[k]
                clock = time.perf_counter
                answered = 0
                try:
                    start.wait()
                    while not stop.is_set() and clock() < window.deadline:
                        t0 = clock()
                        reply = post_repl(conn, body, headers, busy)
                        latencies.append(clock() - t0)
                        if reply.status != 201:
                            raise CheckFailed(f"thread {k}: expected 201, got {reply.describe()}")
                        if answered % CHECK_EVERY == 0:
                            check(reply)
                        answered += 1
                        if answered >= MAX_PER_SESSION:
                            window.capped = True
                            stop.set()
                except BaseException as exc:  # reported by the check
                    window.failures.append(f"thread {k}: {exc}" if isinstance(exc, CheckFailed)
                                           else f"thread {k}: {type(exc).__name__}: {exc}")
                    stop.set()
                finally:
                    window.answered[k] = answered

            workers = [threading.Thread(target=worker, args=(k,), name=f"bench-{k}")
                       for k in range(threads)]
            for w in workers:
                w.start()
            daemon_cpu, client_cpu = daemon.cpu_seconds(), _process_cpu_s()
            t0 = time.perf_counter()
            window.deadline = t0 + window_s
            start.wait()
            for w in workers:
                w.join()
            window.elapsed_s = time.perf_counter() - t0
            window.daemon_cpu_s = daemon.cpu_seconds() - daemon_cpu
            window.client_cpu_s = _process_cpu_s() - client_cpu
            return window

        def verify(window: Window) -> None:
            raise_problems(window.failures)
            problems: list[str] = []
            for session_id, answered in zip(window.session_ids, window.answered, strict=True):
                problems += store_problems(list_executions(control, session_id), answered,
                                           session_id, code, expected)
            raise_problems(problems)
            done.append(window)

        label = (f"vm-system: {threads} threads × POST /executions/repl {code!r} ({threads} "
                 f"sessions, {threads} connections), {window_s:g} s windows")

        def details(stats: Mapping[str, Stats]) -> dict[str, Any]:
            timed = done[-stats[label].n:]
            latencies = [x for w in timed for per_thread in w.latencies for x in per_thread]
            return {
                "threads": threads,
                "window_s": window_s,
                "executions_per_window": [sum(w.answered) for w in timed],
                "windows_capped": sum(w.capped for w in timed),
                "stored_equals_201s": True,  # verified after every window, or the scenario fails
                "session_busy_refusals": busy.refusals,
                "daemon_cpu_cores": statistics.median(w.daemon_cpu_s / w.elapsed_s for w in timed),
                "client_cpu_cores": statistics.median(w.client_cpu_s / w.elapsed_s for w in timed),
                "latency_under_load": spread(latencies),
                "usable_cores": machine_info()["usable_cores"],
            }

        return Setup([
            Measured(VM, label, CountedSampler(run, before=open_window, after=close_window,
                                               check=verify, count=lambda w: sum(w.answered))),
        ], details=details, shutdown_problems=daemon.shutdown_problems)

    return setup


def notes(d: Mapping[str, Any]) -> list[str]:
    lat = d.get("latency_under_load") or {}
    lines = [f"http-throughput: {d['threads']} threads, {d['window_s']:g} s windows, "
             f"{', '.join(str(n) for n in d['executions_per_window'])} executions per timed "
             "window, every one found in the store; CPU used: daemon "
             f"{d['daemon_cpu_cores']:.2f} cores, this client {d['client_cpu_cores']:.2f} cores "
             f"of {d['usable_cores']} usable"
             + (f"; latency per request under this load {format_seconds(lat['median_s'])} "
                f"(p90 {format_seconds(lat['p90_s'])})" if lat else "")]
    if d.get("session_busy_refusals"):
        lines.append(f"http-throughput: {d['session_busy_refusals']} SESSION_BUSY refusals, "
                     "retried (the wait is in the figures)")
    return lines


def scenario(threads: int = THREADS, quick_window_s: float = 1.0, code: str = TRIVIAL,
             expected: Any = 2) -> Scenario:
    return Scenario("http-throughput", "http", f"{threads} client threads, each on its own "
                    "session and keep-alive connection, for a fixed window", "execution",
                    throughput_setup(threads, quick_window_s, code=code, expected=expected),
                    Plan(quick_runs=2, full_runs=5, quick_warmup=1, full_warmup=1),
                    throughput=True, notes=notes)
