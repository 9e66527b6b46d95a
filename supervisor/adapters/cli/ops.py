"""`vm-system ops ...`: is the daemon up, and what is it running."""

from __future__ import annotations

import argparse
from typing import Any

from supervisor.adapters.cli import exit_codes
from supervisor.adapters.cli.common import command, group
from supervisor.adapters.cli.output import Output


def add_parser(subparsers: Any) -> None:
    sub = group(subparsers, "ops", help="daemon health and runtime figures",
                description="Operations: the daemon's health and what it is running.")
    command(sub, "health", _health, help="check that the daemon answers",
            description="Check that the daemon answers. Exit code 0 when it is healthy, 1 when "
                        "it answers unhealthy, 4 when no daemon answers.")
    command(sub, "runtime-summary", _runtime_summary,
            help="live sessions, workers and memory of the daemon")


def _health(api: Any, args: argparse.Namespace, out: Output) -> int:
    health = api.health()
    status = health.get("status") if isinstance(health, dict) else None
    if out.as_json:
        out.json(health)
    else:
        out.line(f"{status or 'unknown'}: {api.base_url}", "green" if status == "ok" else "red")
    return exit_codes.OK if status == "ok" else exit_codes.SCRIPT_ERROR


def _runtime_summary(api: Any, args: argparse.Namespace, out: Output) -> int:
    summary = api.runtime_summary()
    if out.as_json:
        out.json(summary)
        return exit_codes.OK
    ids = summary.get("active_session_ids") or []
    pairs: list[tuple[str, Any]] = [("active sessions", summary.get("active_sessions"))]
    for key, value in summary.items():
        if key not in ("active_sessions", "active_session_ids"):
            pairs.append((key.replace("_", " "), value))
    out.fields(pairs)
    if ids:
        out.line()
        out.table(["ACTIVE SESSION ID"], [[i] for i in ids])
    return exit_codes.OK
