"""How a script's outcome is printed, the one set of printers for every command that runs a
script (`run` embedded or on a daemon, `exec repl`, `exec run-file`): on the API's shapes (an
event {"type", "payload"}, a value {"type", "preview", "json"?}, an error {"kind", "name",
"message", ...}), which the embedded run normalises its outcome to first (`to_dict()`)."""

from __future__ import annotations

from typing import Any

from supervisor.adapters.cli import exit_codes
from supervisor.adapters.cli.common import error_line
from supervisor.adapters.cli.output import Output


def exit_code_for(status: str) -> int:
    return exit_codes.BY_STATUS.get(status, exit_codes.SCRIPT_ERROR)


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
