"""The output side of `vm-system bench` (supervisor/adapters/bench_command.py parses the
arguments): progress on stderr while it runs, then the table, the notes, and the files asked for.
"""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from supervisor.adapters import exit_codes
from supervisor.adapters.cli_common import Output
from supervisor.adapters.run_command import UsageError


class _Bar:
    """A rich progress bar on stderr (a terminal)."""

    def __init__(self, out: Output) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description:<20}"), BarColumn(),
                                 TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                                 console=out.console(err=True), transient=True)
        self.task: Any = None

    def start(self, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("starting", total=total)

    def scenario(self, name: str) -> None:
        self.progress.update(self.task, description=name)

    def advance(self, steps: int = 1) -> None:
        self.progress.advance(self.task, steps)

    def stop(self) -> None:
        self.progress.stop()


class _Lines:
    """One line per scenario on stderr (not a terminal: a log rather than a bar)."""

    def __init__(self, out: Output) -> None:
        self.out = out

    def start(self, total: int) -> None:
        return None

    def scenario(self, name: str) -> None:
        self.out.line(f"  {name} ...", err=True)

    def advance(self, steps: int = 1) -> None:
        return None

    def stop(self) -> None:
        return None


def run(args: argparse.Namespace) -> int:
    out = Output()
    if args.profile:
        return _profile(args, out)
    from benchmarks.scenarios import all_scenarios, select

    suite = all_scenarios()
    if args.list:
        out.table(["SCENARIO", "LAYER", "WHAT"], [[s.name, s.layer, s.description] for s in suite])
        return exit_codes.OK
    try:
        chosen = select(suite, args.scenario)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib: pip install 'vm-system[bench]'")

    from benchmarks import report as rep
    from benchmarks.runner import run_benchmark

    shown: _Bar | _Lines | None = None
    if not args.no_progress:
        shown = _Bar(out) if _isatty(out.err) else _Lines(out)
    try:
        result = run_benchmark(chosen, quick=args.quick, directory=args.dir, progress=shown)
    finally:
        if shown is not None:
            shown.stop()

    if args.markdown:
        out.raw(rep.markdown(result) + "\n")
    else:
        for line in rep.header_lines(result):
            out.line(line, "dim")
        out.line()
        out.table(list(rep.COLUMNS), list(rep.table_rows(result)))
        notes = rep.note_lines(result)
        if notes:
            out.line()
            for note in notes:
                out.line(note)
    if args.json is not None:
        rep.write_json(result, args.json)
        out.line(f"JSON: {args.json}", "dim", err=True)
    if args.plot is not None:
        from benchmarks.plot import plot

        plot(result, args.plot)
        out.line(f"plot: {args.plot}", "dim", err=True)
    return exit_codes.OK if result.ok else exit_codes.SCRIPT_ERROR


def _profile(args: argparse.Namespace, out: Output) -> int:
    from benchmarks import profiles

    if args.profile == "eval":
        text = profiles.profile_trivial_eval()
    elif args.profile == "console":
        text = profiles.profile_console()
    elif args.profile == "spawn":
        text = profiles.profile_spawn()
    elif args.profile == "repl":
        text = profiles.profile_repl(directory=args.dir)
    else:
        try:
            text = profiles.profile_daemon(directory=args.dir)
        except RuntimeError as exc:
            raise UsageError(str(exc)) from exc
    out.raw(text + "\n")
    return exit_codes.OK


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
