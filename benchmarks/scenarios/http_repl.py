"""A REPL over HTTP: `POST /api/v1/executions/repl {"input": "1+1"}` to a real `vm-system
serve` daemon on a free port of 127.0.0.1, on one keep-alive connection, from request to
response (the daemon answers once the execution is persisted). Every response is checked
outside the timed part: 201, a `repl` of `1+1` in the right session, `ok`, value 2. References:
`GET /api/v1/health` on the same connection (the HTTP stack alone), and native QuickJS
evaluating `1+1` in this process. The daemon's own `duration_ms` for the same requests (its
access log) is reported under the table."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.daemon import (
    HEALTH_PATH,
    HEALTH_REQUEST_ID,
    JSON_HEADERS,
    REPL_PATH,
    REPL_REQUEST_ID,
    Connection,
    create_session,
    create_template,
    post_repl,
    repl_body,
    repl_expects,
    spread,
    start_daemon,
    worktree,
)
from benchmarks.engines import NATIVE, VM, NativeQuickJS
from benchmarks.harness import Measured, Scenario, Setup, SetupFactory
from benchmarks.supervised import BusyCounter
from benchmarks.timing import CheckFailed, Plan, Sampler, Stats, format_seconds
from benchmarks.workloads import Workload

TRIVIAL = "1+1"
NATIVE_BATCH = 50


def latency_setup(code: str = TRIVIAL, expected: Any = 2) -> SetupFactory:
    """POST /executions/repl of `code` on one keep-alive connection, every reply checked against
    `expected`; GET /health on the same connection and native QuickJS for reference."""

    def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
        daemon = start_daemon(stack, directory)
        control = Connection(daemon.url)
        stack.callback(control.close)
        template_id = create_template(control, "bench-latency")
        session_id = create_session(control, template_id, worktree(directory))
        conn = Connection(daemon.url)  # the measured one, kept alive throughout
        stack.callback(conn.close)
        body = repl_body(session_id, code)
        repl_headers = {**JSON_HEADERS, "X-Request-Id": REPL_REQUEST_ID}
        health_headers = {"X-Request-Id": HEALTH_REQUEST_ID}
        busy = BusyCounter()

        def health_ok(reply: Any) -> None:
            if reply.status != 200 or reply.json() != {"status": "ok"}:
                raise CheckFailed(f"GET /health: {reply.describe()}")

        repl_label = f"vm-system: POST /executions/repl {code!r}, keep-alive, persisted"

        def details(stats: Mapping[str, Stats]) -> dict[str, Any]:
            # Warm-up requests are in the log too: a handful against hundreds of samples.
            server = spread(daemon.access_durations_s(REPL_PATH, REPL_REQUEST_ID))
            server_health = spread(daemon.access_durations_s(HEALTH_PATH, HEALTH_REQUEST_ID))
            out: dict[str, Any] = {"daemon_repl_duration": server,
                                   "daemon_health_duration": server_health,
                                   "session_busy_refusals": busy.refusals,
                                   "connections_opened": conn.opened}
            if server:
                out["outside_daemon_middleware_s"] = stats[repl_label].median - server["median_s"]
            return out

        native = NativeQuickJS()
        found = native.availability()
        trivial = Workload("trivial", "eval('1+1')", TRIVIAL, 2, Plan(1, 1), batch=NATIVE_BATCH)
        return Setup([
            Measured(VM, repl_label,
                     Sampler(lambda _: post_repl(conn, body, repl_headers, busy),
                             check=repl_expects(session_id, code, expected))),
            Measured(VM, "vm-system: GET /health on the same connection (no JavaScript)",
                     Sampler(lambda _: conn.request("GET", HEALTH_PATH, None, health_headers),
                             check=health_ok)),
            Measured(NATIVE, f"{NATIVE}: ctx.eval('1+1') in this process",
                     native.sampler(trivial, stack) if found.present else None, found.note,
                     baseline=True, version=found.version),
        ], details=details, shutdown_problems=daemon.shutdown_problems)

    return setup


def _spread_text(spread: Mapping[str, float] | None) -> str:
    if not spread:
        return "-"
    return (f"{format_seconds(spread['median_s'])} (p10–p90 {format_seconds(spread['p10_s'])}–"
            f"{format_seconds(spread['p90_s'])}, p99 {format_seconds(spread['p99_s'])})")


def notes(d: Mapping[str, Any]) -> list[str]:
    lines = [f"http-repl: the daemon's own duration_ms (access log) of the same repl requests "
             f"{_spread_text(d.get('daemon_repl_duration'))}; of GET /health "
             f"{_spread_text(d.get('daemon_health_duration'))}"]
    if "outside_daemon_middleware_s" in d:
        lines.append(f"http-repl: client median − daemon median = "
                     f"{format_seconds(d['outside_daemon_middleware_s'])} outside the daemon's "
                     "middleware (client, loopback, uvicorn's parsing and event loop); "
                     f"{d['connections_opened']} TCP connection(s) for the measured requests")
    if d.get("session_busy_refusals"):
        lines.append(f"http-repl: {d['session_busy_refusals']} SESSION_BUSY refusals, retried "
                     "(the wait is in the figures)")
    return lines


def scenario(code: str = TRIVIAL, expected: Any = 2) -> Scenario:
    return Scenario("http-repl", "http", "POST /api/v1/executions/repl '1+1' to a real daemon on "
                    "127.0.0.1, keep-alive, request to response, persisted", "request",
                    latency_setup(code, expected),
                    Plan(quick_runs=200, full_runs=2000, quick_warmup=20, full_warmup=200),
                    notes=notes)
