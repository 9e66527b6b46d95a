"""Commands run as whole processes: how `vm-system` is found and started (the module, the console
script, a pyenv shim in front of it), and the check of a finished process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from benchmarks.timing import REPO_ROOT, CheckFailed

PROCESS_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Command:
    """A command run as a new process, and what it must print."""

    engine: str
    label: str
    argv: list[str]
    expected: str  # its stdout, stripped
    match: Literal["exact", "prefix"] = "exact"
    baseline: bool = False


_PYENV_SHIM = re.compile(rb'exec "?([^"\s]*libexec/pyenv)"?\s+exec')


def _pyenv_of_shim(path: str) -> str | None:
    """The pyenv a shim hands over to, or None if `path` is no pyenv shim."""
    try:
        with open(path, "rb") as script:
            found = _PYENV_SHIM.search(script.read(4096))
    except OSError:
        return None
    return found.group(1).decode(errors="replace") if found else None


def _shim_target(pyenv: str) -> str | None:
    """Where pyenv's `vm-system` leads from here (a real path), or None if it leads nowhere."""
    try:
        done = subprocess.run([pyenv, "which", "vm-system"], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    target = done.stdout.strip()
    return os.path.realpath(target) if done.returncode == 0 and target else None


def installed_scripts() -> list[tuple[str, str]]:
    """Every distinct `vm-system` executable on PATH that runs this checkout, in PATH order,
    then the console script next to this interpreter if PATH has none of it:
    (path, "pyenv shim" | "console script").

    Run through pyenv, PATH starts with the interpreter's own bin directory (the console script
    itself) and the shell's PATH (with the shim a user's shell runs) follows: both are listed.
    A shim that leads elsewhere (in a virtual environment, pyenv's `vm-system` is another
    installation's, maybe a stale one) is not this project's cost, and is left out."""
    entries: list[tuple[Path, str | None]] = []  # (path, the pyenv of a shim)
    seen: set[str] = set()
    beside = Path(sys.executable).parent / "vm-system"
    candidates = [Path(d) / "vm-system" for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    for path in [*candidates, beside]:
        real = os.path.realpath(path)
        if real in seen or not (path.is_file() and os.access(path, os.X_OK)):
            continue
        seen.add(real)
        entries.append((path, _pyenv_of_shim(str(path))))
    scripts = {os.path.realpath(p) for p, pyenv in entries if pyenv is None}
    scripts.add(os.path.realpath(beside))
    found: list[tuple[str, str]] = []
    for path, pyenv in entries:
        if pyenv is None:
            found.append((str(path), "console script"))
        elif _shim_target(pyenv) in scripts:
            found.append((str(path), "pyenv shim"))
    return found


def vm_system_commands(args: Sequence[str], shown: str, expected: str,
                       match: Literal["exact", "prefix"] = "exact") -> list[Command]:
    """The ways to run `vm-system ARGS`: the module with this interpreter, then each installed
    `vm-system` (the console script, a pyenv shim in front of it)."""
    commands = [Command("vm-system", f"python -m supervisor.adapters.cli {shown}",
                        [sys.executable, "-m", "supervisor.adapters.cli", *args], expected, match)]
    for path, kind in installed_scripts():
        commands.append(Command("vm-system", f"vm-system {shown} ({kind})", [path, *args],
                                expected, match))
    return commands


def run_process(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    # cwd = the repository root, as for a developer checkout (`-m` finds the package there).
    return subprocess.run(list(argv), cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S, check=False)


def process_expects(expected: str, match: Literal["exact", "prefix"]) -> Callable[[Any], None]:
    """A check of a finished process: exit 0 and its stdout (stripped) `expected`, or starting
    with it."""

    def check(proc: Any) -> None:
        if proc.returncode != 0:
            tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
            raise CheckFailed(f"exit status {proc.returncode}: {tail[0]}")
        out = proc.stdout.strip()
        good = out == expected if match == "exact" else out.startswith(expected)
        if not good:
            raise CheckFailed(f"expected stdout {'' if match == 'exact' else 'starting with '}"
                              f"{expected!r}, got {out[:200]!r}")

    return check
