"""What the route tests share: the API's defaults and field sets, and the checks of an
execution and its events (tests/http/test_*_routes.py, test_cross_cutting_rules.py)."""

from __future__ import annotations

import time
from typing import Any

from http_daemon import TERMINAL_TYPES, Daemon

NIL = "00000000-0000-0000-0000-000000000000"
BAD = "not-a-uuid"

DEFAULT_SETTINGS = {
    "limits": {"cpu_ms": 2000, "wall_ms": 5000, "mem_mb": 128, "max_events": 50000, "max_output_kb": 256,
               "max_host_calls": 10000, "max_host_in_kb": 16384, "max_host_out_kb": 16384},
    "runtime": {"esm": True, "strict": True, "console": True},
    "resolver": {"roots": ["."], "extensions": [".js", ".mjs"], "allow_absolute_repo_imports": False},
}
TEMPLATE_FIELDS = {"id", "name", "engine", "created_at", "updated_at"}
SESSION_FIELDS = {"id", "template_id", "workspace_id", "base_commit_oid", "worktree_path", "status",
                  "created_at"}
EXECUTION_FIELDS = {"id", "session_id", "kind", "input", "path", "args", "env", "status", "started_at",
                    "ended_at", "result", "error", "metrics", "session_state"}
METRIC_FIELDS = {"wall_ms", "cpu_ms", "fuel", "peak_memory_bytes", "output_bytes", "events"}
EVENT_FIELDS = {"execution_id", "seq", "ts", "type", "payload"}
STATUSES = {"running", "ok", "error", "timeout", "limit_exceeded", "cancelled", "crashed"}
# Long-running scripts need more than the default cpu_ms (2 s).
SLOW_LIMITS = {"cpu_ms": 30000, "wall_ms": 30000}


def busy(ms: int, then: str = "1") -> str:
    return f"(function(){{ const t0 = Date.now(); while (Date.now() - t0 < {ms}) {{}} }})(); {then}"



def check_execution(execution: dict[str, Any]) -> None:
    assert set(execution) >= EXECUTION_FIELDS, set(execution) ^ EXECUTION_FIELDS
    assert execution["status"] in STATUSES
    assert set(execution["metrics"]) >= METRIC_FIELDS, execution["metrics"]
    assert isinstance(execution["args"], dict) and isinstance(execution["env"], dict)
    if execution["status"] != "running":
        assert execution["ended_at"] is not None
        assert execution["session_state"]["state"] in {"kept", "rolled_back", "closed"}


def check_events(events: list[dict[str, Any]], execution: dict[str, Any]) -> None:
    """seq 1..n, input_echo first, exactly one terminal event last, matching the status."""
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for event in events:
        assert set(event) == EVENT_FIELDS
        assert event["execution_id"] == execution["id"]
    assert events[0]["type"] == "input_echo"
    terminal = [e for e in events if e["type"] in TERMINAL_TYPES]
    assert len(terminal) == 1 and terminal[0] is events[-1], [e["type"] for e in events]
    expected = {"ok": "value", "error": "exception", "timeout": "limit", "limit_exceeded": "limit",
                "cancelled": "limit"}[execution["status"]]
    assert events[-1]["type"] == expected, (execution["status"], events[-1])


def wait_for_log(daemon: Daemon, predicate: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The daemon's log lines that match, waiting up to `timeout` for the first."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in daemon.log_lines() if predicate(line)]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)
