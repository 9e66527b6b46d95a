"""`vm-system bench`: the overhead benchmark's arguments and its output (progress on stderr while
it runs, then the table, the notes, and the files asked for). The benchmark itself (the
`benchmarks` package: scenarios, runner, report, plot, profiles) is imported when the command
runs, never for `vm-system --help`, and never imports the CLI back.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

from supervisor.adapters.cli import exit_codes
from supervisor.adapters.cli.common import UsageError
from supervisor.adapters.cli.output import Output, isatty


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench",
        help="measure what isolation costs, against native QuickJS and other engines",
        description="Measure what running JavaScript isolated costs: vm-system's layers (sandbox "
                    "evaluation and spawn, the pipeline with persistence, HTTP, a one-shot "
                    "process) and the same workloads in native QuickJS, quickjs-rs, wasmjs and "
                    "Node.js when they are installed (pip install 'vm-system[bench]'). Prints a "
                    "table: median, p10–p90 and the ratio to native QuickJS. Exit code 1 when an "
                    "engine computed a wrong answer or failed.",
    )
    p.add_argument("--scenario", metavar="NAME", action="append",
                   help="run this scenario, layer (eval, sandbox, pipeline, http, process, "
                        "store) or group; repeatable (default: all; --list names them)")
    p.add_argument("--quick", action="store_true", help="a few samples each (under a minute)")
    p.add_argument("--json", metavar="FILE", type=Path, help="write every figure as JSON")
    p.add_argument("--plot", metavar="FILE.png", type=Path,
                   help="draw a bar chart (log scale) as PNG; needs matplotlib")
    p.add_argument("--markdown", action="store_true", help="print the report as Markdown")
    p.add_argument("--dir", metavar="DIR", type=Path,
                   help="make the temporary databases inside DIR (default: the system's)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--profile", choices=("eval", "console", "spawn", "repl", "daemon"),
                   help="instead of benchmarking, profile a trivial evaluation, 10,000 console "
                        "lines, a new sandbox, a persisted repl (cProfile) or the daemon under "
                        "load (py-spy)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(handler=run)


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
    _check_installed()
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
        shown = _Bar(out) if isatty(out.err) else _Lines(out)
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


def _check_installed() -> None:
    """The benchmark ships in the repository's checkout; an installed vm-system may lack it."""
    if importlib.util.find_spec("benchmarks") is None:
        raise UsageError("the benchmark is not installed with this vm-system (No module named "
                         "'benchmarks'); run it from a checkout of the repository")


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
