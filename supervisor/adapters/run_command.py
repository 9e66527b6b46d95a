"""`vm-system run`: one script in an embedded sandbox, no daemon."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from supervisor.adapters import exit_codes

LIMIT_FLAGS = (
    ("--cpu-ms", "cpu_ms", "CPU time limit in milliseconds"),
    ("--wall-ms", "wall_ms", "wall-clock limit in milliseconds"),
    ("--mem-mb", "mem_mb", "memory limit in MiB (the guest's linear memory)"),
    ("--max-events", "max_events", "maximum number of console events"),
    ("--max-output-kb", "max_output_kb", "maximum console output in KiB"),
)


class UsageError(Exception):
    """Bad input: one readable line, exit code 2, nothing ran."""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run one script in a fresh sandbox (embedded: no daemon needed)",
        description="Run FILE (or -e CODE) once in a fresh sandbox and print its console output "
                    "as it happens, then its value or error. Exit codes: 0 ok, 1 script error, "
                    "2 usage error, 3 a limit stopped the script, 130 interrupted.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE", help="JavaScript file to run")
    source.add_argument("-e", "--eval", dest="code", metavar="CODE", help="JavaScript source to run")
    p.add_argument("--module", action="store_true",
                   help="evaluate as an ES module (the default for .mjs files)")
    for flag, dest, text in LIMIT_FLAGS:
        p.add_argument(flag, dest=dest, type=int, metavar="N", help=text)
    p.add_argument("--json", action="store_true",
                   help="print the whole outcome (events, value or error, metrics) as JSON")
    p.add_argument("--metrics", action="store_true", help="print the metrics line to stderr")
    p.add_argument("--server-url", metavar="URL",
                   help="run it on a daemon instead of embedded (POST /api/v1/run); scripts only")
    p.add_argument("--token", default=None,
                   help="bearer token for --server-url (default: $VM_SYSTEM_TOKEN)")
    p.add_argument("--timeout", type=float, default=None, help=argparse.SUPPRESS)
    p.set_defaults(handler=run)


def _read_source(args: argparse.Namespace) -> tuple[str, str, bool]:
    """(code, filename, is_module)"""
    if args.code is not None:
        if not args.code.strip():
            raise UsageError("the code given with -e is empty")
        return args.code, "<eval>", bool(args.module)
    path = Path(args.file)
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a script")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        code = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not valid UTF-8 (bad byte at offset {exc.start})") from exc
    if not code.strip():
        raise UsageError(f"{path} is empty")
    return code, str(path), bool(args.module) or path.suffix == ".mjs"


def _limits(args: argparse.Namespace) -> Any:
    from sandbox import Limits

    given = {dest: getattr(args, dest) for _, dest, _ in LIMIT_FLAGS if getattr(args, dest) is not None}
    try:
        return Limits().replace(**given)
    except ValueError as exc:
        flag = next((f for f, d, _ in LIMIT_FLAGS if str(exc).startswith(d)), None)
        raise UsageError(f"{flag or 'limit'}: {exc}") from exc


def _print_event(event: Any, out: TextIO, err: TextIO) -> None:
    if event.type == "console":
        stream = err if event.payload["level"] in ("warn", "error") else out
        stream.write(event.payload["text"] + "\n")
        stream.flush()
    elif event.type == "system":
        err.write(f"[vm-system] {event.payload['message']}\n")


def _print_error(error: Any, err: TextIO) -> None:
    if error.kind == "exception":
        err.write(f"Uncaught {error.name}: {error.message}\n")
        if error.stack:
            err.write(error.stack.rstrip("\n") + "\n")
    else:
        err.write(f"error: {error.kind}: {error.message}\n")


def _run_remote(args: argparse.Namespace, code: str, is_module: bool) -> int:
    """The same job on a daemon: the code is sent, the outcome printed the same way."""
    from supervisor.adapters.cli_common import Output, make_client
    from supervisor.adapters.exec_commands import print_outcome

    if is_module:
        raise UsageError("ES modules run embedded only; drop --server-url or --module")
    given = {dest: getattr(args, dest) for _, dest, _ in LIMIT_FLAGS if getattr(args, dest) is not None}
    api = make_client(args)
    try:
        execution = api.run(code=code, limits=given or None)
        return print_outcome(api, Output(as_json=args.json), execution, metrics=args.metrics)
    finally:
        api.close()


def run(args: argparse.Namespace) -> int:
    code, filename, is_module = _read_source(args)
    limits = _limits(args)
    if args.server_url:
        return _run_remote(args, code, is_module)

    from sandbox import Sandbox

    out, err = sys.stdout, sys.stderr
    on_event = None if args.json else (lambda e: _print_event(e, out, err))
    with Sandbox(limits=limits, auto_checkpoint=False) as sb:
        previous = signal.signal(signal.SIGINT, lambda *_: sb.cancel())
        try:
            if is_module:
                outcome = sb.eval_module(code, filename=filename, on_event=on_event)
            else:
                outcome = sb.eval(code, filename=filename, on_event=on_event)
        finally:
            signal.signal(signal.SIGINT, previous)
    if args.json:
        out.write(json.dumps(outcome.to_dict(), indent=2) + "\n")
    else:
        if outcome.value is not None and outcome.value.get("type") != "undefined" and not is_module:
            out.write(outcome.value["preview"] + "\n")
        if outcome.error is not None:
            _print_error(outcome.error, err)
    if args.metrics and outcome.metrics is not None:
        m = outcome.metrics
        err.write(metrics_line(m.to_dict()) + "\n")
    return exit_codes.BY_STATUS[outcome.status]


def metrics_line(metrics: dict[str, Any]) -> str:
    m = metrics or {}
    # `fuel` is left out: the engine does not meter it (it is always null).
    return (f"wall {m.get('wall_ms')} ms, cpu {m.get('cpu_ms')} ms, memory "
            f"{m.get('peak_memory_bytes')} B, output {m.get('output_bytes')} B, events "
            f"{m.get('events')}")
