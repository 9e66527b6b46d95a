"""A one-shot script as a whole new process: `vm-system run -e '1+1'` (through the module, the
console script and a pyenv shim when there is one), the library in a bare `python -c`, and the
alternatives' one-shot equivalents; `python -c pass` and `vm-system --help` for reference.
Each process's exit status and output are checked. Processes run with the repository as their
working directory and this interpreter (`sys.executable`, not a shim, unless said)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.engines import NATIVE, VM, NativeQuickJS, QuickJsRs, WasmJs
from benchmarks.engines.node import NAME as NODE
from benchmarks.engines.node import node_path
from benchmarks.harness import Measured, Scenario, Setup
from benchmarks.processes import Command, process_expects, run_process, vm_system_commands
from benchmarks.timing import Plan, Sampler

TRIVIAL = "1+1"
PYTHON_VM = "from sandbox import Sandbox; print(Sandbox().eval('1+1').value['json'])"
PYTHON_NATIVE = "import quickjs; print(quickjs.Context().eval('1+1'))"
PYTHON_QUICKJS_RS = ("from quickjs_rs import Runtime\n"
                     "with Runtime() as rt, rt.new_context() as ctx: print(ctx.eval('1+1'))")
PYTHON_WASMJS = "from wasmjs import wasmjs; print(wasmjs.WasmJS().eval('1+1'))"


def commands() -> list[tuple[Command, str | None]]:
    """Every command and, for an engine that is absent, why (the command is then not run)."""
    py = sys.executable
    listed: list[tuple[Command, str | None]] = [
        (c, None) for c in vm_system_commands(["run", "-e", TRIVIAL], f"run -e {TRIVIAL!r}", "2")]
    listed.append((Command(VM, "vm-system: python -c 'Sandbox().eval(\"1+1\")' (the library, no "
                                "CLI)", [py, "-c", PYTHON_VM], "2"), None))
    for engine, code in ((NativeQuickJS(), PYTHON_NATIVE), (QuickJsRs(), PYTHON_QUICKJS_RS),
                         (WasmJs(), PYTHON_WASMJS)):
        found = engine.availability()
        listed.append((Command(engine.name, f"{engine.name}: python -c, new context, eval('1+1')",
                               [py, "-c", code], "2", baseline=engine.name == NATIVE),
                       None if found.present else found.note))
    node = node_path()
    listed.append((Command(NODE, "Node.js: node -e 'console.log(1+1)'",
                           [node or "node", "-e", "console.log(1+1)"], "2"),
                   None if node else "`node` is not on the PATH"))
    listed.append((Command("python", "reference: python -c pass", [py, "-c", "pass"], ""), None))
    listed.append((Command(VM, "reference: python -m supervisor.adapters.cli --help (no engine)",
                           [py, "-m", "supervisor.adapters.cli", "--help"], "usage: vm-system",
                           "prefix"), None))
    return listed


def _runner(argv: list[str]) -> Callable[[Any], Any]:
    return lambda _: run_process(argv)


def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
    rows = []
    for command, absent in commands():
        if absent is not None:
            rows.append(Measured(command.engine, command.label, None, absent, command.baseline))
            continue
        rows.append(Measured(command.engine, command.label,
                             Sampler(_runner(command.argv),
                                     check=process_expects(command.expected, command.match)),
                             baseline=command.baseline))
    return Setup(rows, details=lambda _: {"commands": {c.label: c.argv for c, _ in commands()}})


def scenario() -> Scenario:
    return Scenario("process-run", "process", "a one-shot '1+1' as a whole new process (warm "
                    "caches), start to exit", "process", setup, Plan(3, 15, 1, 2))

