"""`vm-system exec ...`: run code in a session of the daemon, and read executions and events."""

from __future__ import annotations

import argparse
import json
from typing import Any

from supervisor.adapters.cli import exit_codes
from supervisor.adapters.cli.common import UsageError, command, group, json_object, read_code
from supervisor.adapters.cli.outcome import (
    exit_code_for,
    metrics_line,
    print_console_event,
    print_ending,
    print_execution_id,
)
from supervisor.adapters.cli.output import Output, one_line, scalar, when

OUTCOME_EPILOG = """\
Prints the execution's id first on stderr (for `exec get` and `exec events`), then the
script's console output, then its value (stdout) or its error (stderr), the way `vm-system run`
does (an ES module's value is its namespace); --json prints the execution instead."""

EVENTS_EPILOG = """\
One line per event: seq, type, content. --follow streams the events as they happen (server-sent
events) until the execution ends; with --json, --follow prints one JSON event per line."""

_EVENT_STYLES = {"input_echo": "dim", "value": "green", "exception": "red", "limit": "magenta",
                 "system": "cyan"}
_CONSOLE_STYLES = {"warn": "yellow", "error": "red", "debug": "dim"}


def add_parser(subparsers: Any) -> None:
    sub = group(subparsers, "exec", help="run code in a session, read executions and events "
                                         "(through the daemon)",
                description="Executions: code run in a session (repl, run-file), with their "
                            "status, value or error, metrics and events.")

    p = command(sub, "repl", _repl, help="evaluate CODE in a session", epilog=OUTCOME_EPILOG)
    p.add_argument("session", metavar="SESSION", help="the session's id")
    p.add_argument("code", metavar="CODE", help="JavaScript source ('-' reads it from stdin)")
    p.add_argument("--metrics", action="store_true", help="print the metrics line to stderr")

    p = command(sub, "run-file", _run_file, help="run a file of the session's worktree",
                epilog=OUTCOME_EPILOG)
    p.add_argument("session", metavar="SESSION", help="the session's id")
    p.add_argument("path", metavar="PATH", help="a path relative to the session's worktree")
    p.add_argument("--args", metavar="JSON", help="a JSON object, the script's `args` global")
    p.add_argument("--env", metavar="JSON", help="a JSON object, the script's `env` global")
    p.add_argument("--metrics", action="store_true", help="print the metrics line to stderr")

    p = command(sub, "list", _list, help="list a session's executions, newest first")
    p.add_argument("session", metavar="SESSION", help="the session's id")
    p.add_argument("--limit", type=int, metavar="N", help="at most N executions (default 50)")

    p = command(sub, "get", _get, help="show an execution")
    p.add_argument("execution", metavar="EXECUTION", help="the execution's id")

    p = command(sub, "events", _events, help="print an execution's events", epilog=EVENTS_EPILOG)
    p.add_argument("execution", metavar="EXECUTION", help="the execution's id")
    p.add_argument("--after-seq", type=int, default=None, metavar="N",
                   help="only the events after seq N")
    p.add_argument("--follow", "-f", action="store_true",
                   help="stream the events as they happen, until the execution ends")


# ----- printing an outcome like `vm-system run` -------------------------------------------


def _print_execution(api: Any, out: Output, execution: dict[str, Any], *, is_module: bool,
                     metrics: bool) -> int:
    """A finished execution as `vm-system run` prints its outcome; the exit code for its status."""
    if out.as_json:
        out.json(execution)
    else:
        print_execution_id(out, str(execution.get("id")))
        for event in api.list_events(execution["id"]):
            print_console_event(out, event)
        print_ending(out, str(execution.get("status")), execution.get("result"),
                     execution.get("error"), is_module=is_module)
    if metrics:
        out.raw(metrics_line(execution.get("metrics") or {}) + "\n", err=True)
    return exit_code_for(str(execution.get("status")))


def _repl(api: Any, args: argparse.Namespace, out: Output) -> int:
    code = read_code(args.code)
    execution = api.repl(args.session, code)
    return _print_execution(api, out, execution, is_module=False, metrics=args.metrics)


def _run_file(api: Any, args: argparse.Namespace, out: Output) -> int:
    script_args = json_object(args.args, "--args") if args.args is not None else None
    env = json_object(args.env, "--env") if args.env is not None else None
    execution = api.run_file(args.session, args.path, args=script_args, env=env)
    # The daemon runs `.mjs` files as modules.
    return _print_execution(api, out, execution, is_module=str(args.path).endswith(".mjs"),
                            metrics=args.metrics)


# ----- executions --------------------------------------------------------------------------


def _source(e: dict[str, Any]) -> str:
    return e.get("path") or e.get("input") or ""


def _session_state(e: dict[str, Any]) -> str:
    state = e.get("session_state")
    if isinstance(state, dict):
        text = str(state.get("state", ""))
        checkpoint = state.get("checkpoint_execution_id")
        return f"{text} (checkpoint {checkpoint})" if checkpoint else text
    return "" if state is None else str(state)


def _list(api: Any, args: argparse.Namespace, out: Output) -> int:
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    executions = api.list_executions(args.session, args.limit)
    rows = [[e.get("id"), e.get("kind"), e.get("status"), when(e.get("started_at")),
             (e.get("metrics") or {}).get("wall_ms"), one_line(_source(e), 50)] for e in executions]
    return out.result(executions, lambda: out.table(
        ["ID", "KIND", "STATUS", "STARTED", "WALL MS", "INPUT"], rows, empty="no executions",
        styles={2: "status"}))


def _get(api: Any, args: argparse.Namespace, out: Output) -> int:
    e = api.get_execution(args.execution)
    if out.as_json:
        out.json(e)
        return exit_codes.OK
    result = e.get("result") if isinstance(e.get("result"), dict) else None
    error = e.get("error") if isinstance(e.get("error"), dict) else None
    out.fields([
        ("id", e.get("id")), ("session", e.get("session_id")), ("kind", e.get("kind")),
        ("status", e.get("status")), ("input", e.get("input")), ("path", e.get("path")),
        ("args", json.dumps(e["args"]) if e.get("args") else None),
        ("env", json.dumps(e["env"]) if e.get("env") else None),
        ("started", when(e.get("started_at"))), ("ended", when(e.get("ended_at"))),
        ("session state", _session_state(e)),
        ("value", f"{result.get('preview')} ({result.get('type')})" if result else None),
        ("error", f"{error.get('kind')}: {error.get('name') or ''}{': ' if error.get('name') else ''}"
                  f"{error.get('message', '')}" if error else None),
        ("metrics", metrics_line(e["metrics"]) if e.get("metrics") else None),
    ])
    return exit_codes.OK


# ----- events ------------------------------------------------------------------------------


def event_text(event: dict[str, Any]) -> str:
    """What an event says, on one line for most types (console text is kept as it is)."""
    kind = event.get("type")
    p = event.get("payload") or {}
    if kind == "input_echo":
        return one_line(p.get("text", ""), 200)
    if kind == "console":
        return f"[{p.get('level', 'log')}] {p.get('text', '')}"
    if kind == "value":
        return f"{p.get('preview', '')} ({p.get('type', '?')})"
    if kind == "exception":
        return f"{p.get('name', 'Error')}: {p.get('message', '')}"
    if kind == "limit":
        return f"{p.get('kind', 'limit')}: {p.get('message', '')}"
    if kind == "system":
        return f"[{p.get('level', 'info')}] {p.get('message', '')}"
    return scalar(p)


def print_event(out: Output, event: dict[str, Any]) -> None:
    seq = str(event.get("seq", "?")).rjust(4)
    kind = str(event.get("type", "?"))
    text = event_text(event)
    if out.rich:
        from rich.text import Text

        style = _EVENT_STYLES.get(kind, "")
        if kind == "console":
            style = _CONSOLE_STYLES.get((event.get("payload") or {}).get("level", ""), "")
        line = Text()
        line.append(seq, style="dim")
        line.append("  ")
        line.append(kind.ljust(10), style=f"bold {_EVENT_STYLES.get(kind, '')}".strip())
        line.append("  ")
        line.append(text, style=style)
        out.console().print(line, soft_wrap=True)
    else:
        out.raw(f"{seq}  {kind.ljust(10)}  {text}\n")


def _events(api: Any, args: argparse.Namespace, out: Output) -> int:
    if args.after_seq is not None and args.after_seq < 0:
        raise UsageError("--after-seq must be 0 or more")
    if args.follow:
        for event in api.iter_event_stream(args.execution, last_event_id=args.after_seq):
            if out.as_json:
                out.json(event, compact=True)
            else:
                print_event(out, event)
        return exit_codes.OK
    events = api.list_events(args.execution, args.after_seq)
    if out.as_json:
        out.json(events)
    else:
        for event in events:
            print_event(out, event)
    return exit_codes.OK
