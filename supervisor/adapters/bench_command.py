"""`vm-system bench`: the overhead benchmark. Only its arguments live here; the benchmark itself
(the `benchmarks` package) is imported when the command runs, never for `vm-system --help`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from supervisor.adapters.run_command import UsageError


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


def run(args: argparse.Namespace) -> int:
    try:
        from benchmarks.command import run as run_bench
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmarks", "benchmarks.command"):
            raise
        raise UsageError(f"the benchmark is not installed with this vm-system ({exc}); run it "
                         "from a checkout of the repository") from exc
    return run_bench(args)
