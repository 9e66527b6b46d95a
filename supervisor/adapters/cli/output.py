"""Where a command prints: rich tables and colours on a terminal, plain aligned text when piped,
the API's JSON with --json; and the text helpers the tables and fields use.

rich is imported when something is printed, never for `vm-system --help`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from supervisor.adapters.cli import exit_codes

# Table columns of free text, which may fold over several lines on a narrow terminal.
FOLDING_COLUMNS = frozenset({"INPUT", "WORKTREE", "CONFIG", "PATH"})


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
            rich = isatty(self.out) and os.environ.get("TERM") != "dumb"
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
        if self.rich and style and (not err or isatty(self.err)):
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


def isatty(stream: Any) -> bool:
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
