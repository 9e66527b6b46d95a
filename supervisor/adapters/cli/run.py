"""`vm-system run`: one script in a fresh sandbox, embedded (no daemon) unless asked otherwise."""

from __future__ import annotations

import argparse
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.adapters.api_time import api_time
from supervisor.adapters.cli import exit_codes
from supervisor.adapters.cli.common import URL_ENV, UsageError, make_client
from supervisor.adapters.cli.outcome import (
    exit_code_for,
    metrics_line,
    print_console_event,
    print_ending,
    print_execution_id,
)
from supervisor.adapters.cli.output import Output
from vocabulary import LimitName

if TYPE_CHECKING:
    from supervisor.typescript import TypeScript

LIMIT_FLAGS: tuple[tuple[str, LimitName, str], ...] = (
    ("--cpu-ms", "cpu_ms", "CPU time limit in milliseconds"),
    ("--wall-ms", "wall_ms", "wall-clock limit in milliseconds"),
    ("--mem-mb", "mem_mb", "memory limit in MiB (the guest's linear memory)"),
    ("--max-events", "max_events", "maximum number of console events (and host calls)"),
    ("--max-output-kb", "max_output_kb", "maximum console output in KiB"),
)

DESCRIPTION = f"""\
Run FILE (or -e CODE) once in a fresh sandbox and print its console output as it happens, then
its value or its error. An ES module's value is its namespace (what it exports), printed unless
it exports nothing. A TypeScript file has its types stripped first, by a pinned transpiler run in
a sandbox (fetched from the npm registry on first use into the user's cache directory); errors
name the .ts file's own lines.

Embedded by default: no daemon is needed, and none is used even when ${URL_ENV} is set (the
environment picks which daemon, never whether). --remote runs it on the daemon at ${URL_ENV}
(default http://127.0.0.1:3210), --server-url URL on the daemon at URL: the console output
still streams as it happens, the run is recorded there and its execution id is printed first
on stderr; ES modules run embedded only.

--json prints one document, the same embedded and on a daemon: execution_id (null when
embedded), status, value, error, events (each with type, payload and ts; the code itself is not
echoed) and metrics.

{exit_codes.SUMMARY}"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run one script in a fresh sandbox (embedded: no daemon needed)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE",
                        help="JavaScript or TypeScript (.ts, .mts, .cts) file to run")
    source.add_argument("-e", "--eval", dest="code", metavar="CODE", help="JavaScript source to run")
    p.add_argument("--module", action="store_true",
                   help="evaluate as an ES module (the default for .mjs files)")
    for flag, dest, text in LIMIT_FLAGS:
        p.add_argument(flag, dest=dest, type=int, metavar="N", help=text)
    p.add_argument("--json", action="store_true",
                   help="print the whole outcome (events, value or error, metrics) as JSON")
    p.add_argument("--metrics", action="store_true", help="print the metrics line to stderr")
    remote = p.add_argument_group("on a daemon (POST /api/v1/run; scripts only)")
    remote.add_argument("--remote", action="store_true",
                        help=f"run it on the daemon at ${URL_ENV} (default http://127.0.0.1:3210)")
    remote.add_argument("--server-url", metavar="URL",
                        help="run it on the daemon at URL (implies --remote)")
    remote.add_argument("--token", default=None,
                        help="bearer token of that daemon (default: $VM_SYSTEM_TOKEN)")
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


def _given_limits(args: argparse.Namespace) -> dict[str, int]:
    return {dest: getattr(args, dest) for _, dest, _ in LIMIT_FLAGS if getattr(args, dest) is not None}


def _limits(args: argparse.Namespace) -> Any:
    from sandbox import Limits

    try:
        return Limits().replace(**_given_limits(args))
    except ValueError as exc:
        # The engine names the field ("mem_mb must be ..."): say the flag instead.
        text = str(exc)
        for flag, dest, _ in LIMIT_FLAGS:
            if text.startswith(dest + " "):
                raise UsageError(flag + text[len(dest):]) from exc
        raise UsageError(text) from exc


def _import_tree(filename: str) -> tuple[Path, str]:
    """(the tree its imports resolve in, its name there): a file's own directory (it may import
    what lies beside and below it, nothing above), or the working directory for -e code."""
    if filename == "<eval>":
        return Path.cwd(), filename
    path = Path(filename).absolute()
    return path.parent, path.name


def _typescript() -> TypeScript:
    """The transpiler of TypeScript files, its packages and what it strips cached in the user's
    cache directory (fetched from $VM_SYSTEM_NPM_REGISTRY, else npm's, on first use)."""
    import platformdirs

    from supervisor.packages import RegistryClient, registry_url
    from supervisor.typescript import TypeScript, transpiler_base

    cache = Path(platformdirs.user_cache_dir("vm-system")) / "typescript"
    return TypeScript(transpiler_base(cache / "transpiler", lambda: RegistryClient(registry_url())),
                      cache_dir=cache / "stripped")


def _run_embedded(code: str, filename: str, forced_module: bool, limits: Any,
                  out: Output, typescript: TypeScript) -> tuple[dict[str, Any], bool]:
    from supervisor.base_images import BaseImages
    from supervisor.imports.entry import commonjs_main, entry_kind
    from supervisor.libraries import Resolved
    from supervisor.modules.grants import SessionGrants

    root, name = _import_tree(filename)
    kind = "module" if forced_module else entry_kind(name, code, esm=True)
    if kind == "commonjs":
        code = commonjs_main(name, code)
    # No template, so no module: only `import` and `require` of the tree's files.
    grants = SessionGrants([], [], worktree=str(root), session_id=None, template_id=None,
                           data_dir=root, transform=typescript.transform)
    bases = BaseImages(limits)
    on_event = None if out.as_json else (lambda e: print_console_event(out, e.to_dict()))
    try:
        sb = bases.sandbox(Resolved([], {}), limits, grants)
        sb.auto_checkpoint = False
        with sb:
            previous = signal.signal(signal.SIGINT, lambda *_: sb.cancel())
            try:
                if kind == "module":
                    outcome = sb.eval_module(code, filename=name, on_event=on_event)
                else:
                    outcome = sb.eval(code, filename=name, on_event=on_event)
            finally:
                signal.signal(signal.SIGINT, previous)
    finally:
        bases.close()
        grants.close()
    return {
        "execution_id": None,
        "status": outcome.status,
        "value": outcome.value,
        "error": outcome.error.to_dict() if outcome.error is not None else None,
        "events": [{"type": e.type, "payload": e.payload, "ts": api_time(datetime.fromtimestamp(e.ts, tz=UTC))}
                   for e in outcome.events],
        "metrics": outcome.metrics.to_dict() if outcome.metrics is not None else None,
    }, kind == "module"


def _run_remote(args: argparse.Namespace, code: str, is_module: bool,
                out: Output) -> dict[str, Any]:
    """The same job on a daemon, its events printed as the daemon records them."""
    if is_module:
        raise UsageError("ES modules run embedded only; drop --remote/--server-url or --module")
    events: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> None:
        if not events and not out.as_json:
            print_execution_id(out, str(event.get("execution_id")))
        events.append(event)
        if not out.as_json:
            print_console_event(out, event)

    api = make_client(args)
    try:
        execution = api.run(code=code, limits=_given_limits(args) or None, on_event=on_event)
    finally:
        api.close()
    return {
        "execution_id": execution.get("id"),
        "status": execution.get("status"),
        "value": execution.get("result"),
        "error": execution.get("error"),
        "events": [{"type": e.get("type"), "payload": e.get("payload"), "ts": e.get("ts")}
                   for e in events if e.get("type") != "input_echo"],
        "metrics": execution.get("metrics"),
    }


def run(args: argparse.Namespace) -> int:
    from supervisor.typescript import is_typescript

    code, filename, is_module = _read_source(args)
    limits = _limits(args)
    out = Output(as_json=args.json)
    typescript = _typescript()
    try:
        if is_typescript(filename):
            # Stripped here, also for a daemon: what it is sent is the JavaScript.
            code = typescript.javascript(code, Path(filename).name)
        if args.remote or args.server_url:
            doc = _run_remote(args, code, is_module, out)
        else:
            doc, is_module = _run_embedded(code, filename, is_module, limits, out, typescript)
    finally:
        typescript.close()
    if out.as_json:
        out.json(doc)
    else:
        print_ending(out, str(doc["status"]), doc["value"], doc["error"], is_module=is_module)
    if args.metrics and doc["metrics"] is not None:
        out.raw(metrics_line(doc["metrics"]) + "\n", err=True)
    return exit_code_for(str(doc["status"]))
