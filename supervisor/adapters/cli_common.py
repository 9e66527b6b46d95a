"""What the commands share: the error line and usage errors, the connection options and
building a client, JSON arguments, output (rich tables and colours on a terminal, plain text
when piped, the API's JSON with --json), and how a script's outcome is printed (`run`,
`exec repl`, `exec run-file`).

Nothing heavy at import time: httpx and rich are imported when a command runs, never for
`vm-system --help`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from supervisor.adapters import exit_codes

# Every error line the CLI writes starts with this, whatever the command and whatever failed
# (arguments, input, the daemon's answer, no daemon at all).
ERROR_PREFIX = "vm-system: error: "
URL_ENV = "VM_SYSTEM_URL"
TOKEN_ENV = "VM_SYSTEM_TOKEN"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Table columns of free text, which may fold over several lines on a narrow terminal.
FOLDING_COLUMNS = frozenset({"INPUT", "WORKTREE", "CONFIG", "PATH"})

Handler = Callable[[Any, argparse.Namespace, "Output"], int]


class UsageError(Exception):
    """Bad input: one readable line, exit code 2, nothing ran."""


def error_line(message: str) -> str:
    return ERROR_PREFIX + message


def add_common_options(parser: argparse.ArgumentParser) -> None:
    from supervisor.adapters.client import DEFAULT_URL

    group = parser.add_argument_group("daemon connection")
    group.add_argument("--server-url", metavar="URL", default=None,
                       help=f"the daemon's address (default: ${URL_ENV}, else {DEFAULT_URL})")
    group.add_argument("--token", metavar="TOKEN", default=None,
                       help=f"bearer token of a daemon started with one (default: ${TOKEN_ENV})")
    group.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                       help="give up waiting for an answer after this long (default: 30 s, "
                            "600 s for requests that run JavaScript)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of text")


def command(subparsers: Any, name: str, handler: Handler, help: str,
            description: str | None = None, epilog: str | None = None) -> argparse.ArgumentParser:
    """A leaf command that talks to the daemon: the common options, and a handler run with a
    connected client and an output."""
    p = subparsers.add_parser(name, help=help, description=description or help[:1].upper() + help[1:] + ".",
                              epilog=f"{epilog}\n\n{exit_codes.SUMMARY}" if epilog else exit_codes.SUMMARY,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(p)
    p.set_defaults(handler=lambda args: run_handler(handler, args))
    return p


def group(subparsers: Any, name: str, help: str, description: str) -> Any:
    p = subparsers.add_parser(name, help=help, description=description)
    sub = p.add_subparsers(dest=f"{name}_command", metavar="COMMAND",
                           parser_class=type(p))
    sub.required = True
    return sub


def make_client(args: argparse.Namespace) -> Any:
    from supervisor.adapters.client import DEFAULT_URL, Client

    url = args.server_url or os.environ.get(URL_ENV) or DEFAULT_URL
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    try:
        return Client(url, token=token or None, timeout=args.timeout)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def run_handler(handler: Handler, args: argparse.Namespace) -> int:
    out = Output(as_json=args.json)
    api = make_client(args)
    try:
        return int(handler(api, args, out))
    finally:
        api.close()


# ----- arguments ---------------------------------------------------------------------------


def json_object(text: str, flag: str) -> dict[str, Any]:
    """A JSON object given on the command line (`@FILE` reads it from a file, `-` from stdin)."""
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise UsageError(f"{flag}: cannot read {text[1:]}: {exc.strerror or exc}") from exc
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise UsageError(f"{flag}: expected a JSON object like '{{\"key\": 1}}'")
    return value


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def resolve_template(api: Any, ref: str) -> str:
    """A template's id from its id or its (unique) name."""
    if is_uuid(ref):
        return ref
    from supervisor.adapters.client import ApiError

    for template in api.list_templates():
        if template.get("name") == ref:
            return str(template["id"])
    raise ApiError("TEMPLATE_NOT_FOUND", f"no template with the id or name {ref!r}", status=404)


def read_code(code: str) -> str:
    if code == "-":
        code = sys.stdin.read()
    if not code.strip():
        raise UsageError("the code is empty")
    return code


# ----- text --------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(value: Any, width: int | None = None) -> str:
    """A value on one line, control characters made visible, shortened to `width`."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = _CONTROL.sub(lambda m: {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(
        m.group(), f"\\x{ord(m.group()):02x}"), text)
    if width is not None and len(text) > width:
        text = text[: max(width - 1, 1)] + "…"
    return text


def when(value: Any) -> str:
    """An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` (UTC), for people; '' for none."""
    if not value:
        return ""
    text = str(value).replace("T", " ")
    text = re.sub(r"\.\d+", "", text)
    return re.sub(r"(\+00:00|Z)$", "", text)


def scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return one_line(value)
    return json.dumps(value, ensure_ascii=False)


# ----- output ------------------------------------------------------------------------------


class Output:
    """Where a command prints. Human output goes through rich on a terminal (tables, colours)
    and is plain, aligned text when piped; `--json` prints documents as the API sent them."""

    def __init__(self, *, as_json: bool = False, out: TextIO | None = None,
                 err: TextIO | None = None, rich: bool | None = None) -> None:
        self.as_json = as_json
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        if rich is None:
            rich = _isatty(self.out) and os.environ.get("TERM") != "dumb"
        self.rich = rich
        self._console: Any = None
        self._err_console: Any = None

    # rich consoles, made on first use
    def console(self, err: bool = False) -> Any:
        from rich.console import Console

        if err:
            if self._err_console is None:
                self._err_console = Console(file=self.err, highlight=False, soft_wrap=True)
            return self._err_console
        if self._console is None:
            self._console = Console(file=self.out, highlight=False)
        return self._console

    def result(self, doc: Any, human: Callable[[], None]) -> int:
        """A command's answer: with --json the document as the API sent it, else `human()`
        prints it for a person. Returns the exit code of a success."""
        if self.as_json:
            self.json(doc)
        else:
            human()
        return exit_codes.OK

    def json(self, doc: Any, *, compact: bool = False) -> None:
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":")) if compact \
            else json.dumps(doc, indent=2, ensure_ascii=False)
        self.out.write(text + "\n")
        self.out.flush()

    def line(self, text: str = "", style: str | None = None, *, err: bool = False) -> None:
        """One line of text (never read as rich markup)."""
        if self.rich and style and (not err or _isatty(self.err)):
            from rich.text import Text

            self.console(err).print(Text(text, style=style), soft_wrap=True)
        else:
            stream = self.err if err else self.out
            stream.write(text + "\n")
            stream.flush()

    def raw(self, text: str, *, err: bool = False) -> None:
        """Text exactly as given (a script's console output), flushed at once."""
        stream = self.err if err else self.out
        stream.write(text)
        stream.flush()

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
              empty: str = "nothing to show", styles: dict[int, str] | None = None) -> None:
        rows = [[scalar(v) if not isinstance(v, str) else one_line(v) for v in row] for row in rows]
        if self.rich:
            if not rows:
                self.line(empty, "dim")
                return
            from rich import box
            from rich.table import Table
            from rich.text import Text

            gaps = 3 * (len(columns) - 1)
            longest = [max([len(col), *(len(row[i]) for row in rows)]) for i, col in enumerate(columns)]
            tight = gaps + sum(min(n, 16) if col in FOLDING_COLUMNS else n
                               for col, n in zip(columns, longest, strict=True))
            console = self.console()
            wide = tight > console.width
            if wide:
                # Even with the free text folded, the whole columns do not fit: print the table
                # at its natural width and let the terminal wrap the lines; nothing is cut.
                from rich.console import Console

                console = Console(file=self.out, width=gaps + sum(longest), highlight=False,
                                  force_terminal=console.is_terminal,
                                  color_system=console.color_system)
            table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
            for col, n in zip(columns, longest, strict=True):
                if col in FOLDING_COLUMNS and not wide:
                    # Free text folds on a narrow terminal...
                    table.add_column(col, overflow="fold", min_width=min(n, 16))
                else:
                    # ... ids, times, names and statuses stay whole, never "…".
                    table.add_column(col, no_wrap=True, min_width=n)
            for row in rows:
                cells = []
                for i, value in enumerate(row):
                    style = (styles or {}).get(i)
                    if style == "status":
                        style = status_style(value)
                    cells.append(Text(value, style=style or ""))
                table.add_row(*cells)
            console.print(table, crop=False)
            return
        widths = [len(c) for c in columns]
        for row in rows:
            widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
        for row in [list(columns), *rows]:
            self.out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
        self.out.flush()

    def fields(self, pairs: Sequence[tuple[str, Any]], *, title: str | None = None,
               indent: int = 0) -> None:
        """`name  value` lines, aligned; values None or '' are left out."""
        shown = [(k, v if isinstance(v, str) else scalar(v)) for k, v in pairs
                 if v is not None and v != ""]
        if title:
            self.line(title, "bold")
        width = max((len(k) for k, _ in shown), default=0)
        pad = " " * indent
        for key, value in shown:
            if self.rich:
                from rich.text import Text

                text = Text(pad)
                text.append(key.ljust(width), style="cyan")
                text.append("  ")
                text.append(one_line(value), style=status_style(value) if key == "status" else "")
                self.console().print(text, soft_wrap=True)
            else:
                self.out.write(f"{pad}{key.ljust(width)}  {one_line(value)}\n")
        if not self.rich:
            self.out.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_STATUS_STYLES = {
    "ok": "green", "ready": "green", "running": "yellow", "starting": "yellow",
    "error": "red", "crashed": "bold red", "timeout": "magenta", "limit_exceeded": "magenta",
    "cancelled": "yellow", "closed": "dim",
}


def status_style(status: str) -> str:
    return _STATUS_STYLES.get(status, "")


def exit_code_for(status: str) -> int:
    return exit_codes.BY_STATUS.get(status, exit_codes.SCRIPT_ERROR)


# ----- a script's outcome ------------------------------------------------------------------
# One set of printers for every command that runs a script, on the API's shapes (an event
# {"type", "payload"}, a value {"type", "preview", "json"?}, an error {"kind", "name",
# "message", ...}); the embedded run hands over its outcome's `to_dict()`.


def print_execution_id(out: Output, execution_id: str) -> None:
    """A daemon's execution is recorded: its id (for `exec get|events`), on stderr first."""
    out.raw(f"[vm-system] execution {execution_id}\n", err=True)


def print_console_event(out: Output, event: dict[str, Any]) -> None:
    """Console output as the script wrote it (warn and error to stderr); system notes on stderr;
    other events print nothing."""
    payload = event.get("payload") or {}
    if event.get("type") == "console":
        level = payload.get("level", "log")
        out.raw(str(payload.get("text", "")) + "\n", err=level in ("warn", "error"))
    elif event.get("type") == "system":
        out.raw(f"[vm-system] {payload.get('message', '')}\n", err=True)


def print_ending(out: Output, status: str, value: dict[str, Any] | None,
                 error: dict[str, Any] | None, *, is_module: bool = False) -> None:
    """A finished script's value (stdout) or error (stderr).

    Nothing for `undefined`, nor for a module that exports nothing: a module's value is its
    namespace, which is then empty."""
    if status == "ok" and isinstance(value, dict) and value.get("type") != "undefined" \
            and not (is_module and value.get("json") == {}):
        out.raw(str(value.get("preview", "")) + "\n")
    if error:
        if error.get("kind") == "exception":
            # The script's own uncaught exception, printed as Node prints one.
            out.raw(f"Uncaught {error.get('name') or 'Error'}: {error.get('message', '')}\n", err=True)
            if error.get("stack"):
                out.raw(str(error["stack"]).rstrip("\n") + "\n", err=True)
        else:
            # vm-system stopped it (a limit, a cancellation, a crash).
            out.raw(error_line(f"{error.get('kind', 'error')}: {error.get('message', '')}") + "\n",
                    err=True)


def metrics_line(metrics: dict[str, Any]) -> str:
    m = metrics or {}
    # `fuel` is left out: the engine does not meter it (it is always null).
    return (f"wall {m.get('wall_ms')} ms, cpu {m.get('cpu_ms')} ms, memory "
            f"{m.get('peak_memory_bytes')} B, output {m.get('output_bytes')} B, events "
            f"{m.get('events')}")
