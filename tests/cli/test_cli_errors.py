"""Every command fails the same way: a non-zero exit code that says what kind of failure it
was, exactly one line on stderr starting with `vm-system: error:`, nothing on stdout, never a
traceback; and every help text that lists exit codes lists the same ones.

The commands are enumerated from the parser itself, so a new command is covered (or this
file fails until it is given valid arguments below)."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from supervisor.adapters.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
U = str(uuid.uuid4())

# Arguments each command accepts (a daemon would be asked something). `serve` and `bench`
# talk to no daemon.
VALID: dict[str, list[str]] = {
    "run": ["-e", "1", "--remote"],
    "template create": ["demo"],
    "template list": [],
    "template get": [U],
    "template delete": [U],
    "template settings": [U, "--set", "limits.cpu_ms=500"],
    "template add-startup": [U, "init.js"],
    "template list-startup": [U],
    "template remove-startup": [U, U],
    "template add-module": [U, "console"],
    "template remove-module": [U, "console"],
    "template list-modules": [U],
    "template add-library": [U, "greet@1.0"],
    "template remove-library": [U, "greet@1.0"],
    "template list-libraries": [U],
    "template add-capability": [U, "--kind", "fs"],
    "template list-capabilities": [U],
    "template remove-capability": [U, U],
    "session create": ["--template-id", U, "--worktree-path", str(ROOT)],
    "session list": [],
    "session get": [U],
    "session close": [U],
    "exec repl": [U, "1 + 1"],
    "exec run-file": [U, "main.js"],
    "exec list": [U],
    "exec get": [U],
    "exec events": [U, "--follow"],
    "ops health": [],
    "ops runtime-summary": [],
    "libs add": ["left-pad@1.3.0"],
    "libs list": [],
    "libs remove": ["left-pad@1.3.0"],
    "libs verify": [],
}
NO_DAEMON_NEEDED = {"serve", "bench"}

# Input the command itself refuses (argparse accepts it): nothing runs, nothing is sent.
REFUSED: list[list[str]] = [
    [],
    ["nope"],
    ["run", "no/such/file.js"],
    ["run", "-e", "  "],
    ["run", "-e", "1", "--mem-mb", "2"],
    ["run", "-e", "1", "--cpu-ms", "0"],
    ["run", "examples/async.mjs", "--remote"],
    ["serve", "--listen", "nonsense"],
    ["bench", "--scenario", "no-such-scenario"],
    ["template", "create"],
    ["template", "settings", U, "--set", "cpu_ms=5"],
    ["template", "add-capability", U, "--kind", "fs", "--config", "[]"],
    ["session", "create", "--template-id", U, "--worktree-path", "/no/such/dir"],
    ["exec", "repl", U, "   "],
    ["exec", "run-file", U, "a.js", "--args", "{nope"],
    ["exec", "list", U, "--limit", "0"],
    ["exec", "events", U, "--after-seq", "-1"],
    ["ops", "health", "--timeout", "0"],
    ["ops", "health", "--server-url", "localhost:3210"],
]


def _leaves(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    subactions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subactions:
        return {prefix.strip(): parser}
    for action in subactions:
        for name, sub in action.choices.items():
            found.update(_leaves(sub, f"{prefix} {name}"))
    return found


LEAVES = _leaves(build_parser())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VM_SYSTEM_TOKEN"}
    env["VM_SYSTEM_URL"] = url
    return subprocess.run([sys.executable, "-m", "supervisor.adapters.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env)


def _fails_in_one_line(args: list[str], out: subprocess.CompletedProcess[str]) -> str:
    where = f"vm-system {' '.join(args)} -> {out.returncode}\nstdout: {out.stdout!r}\nstderr: {out.stderr!r}"
    assert out.returncode != 0, where
    assert out.stdout == "", where
    assert "Traceback" not in out.stderr, where
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vm-system: error: "), where
    return lines[0]


def _run_all(cases: list[list[str]], url: str) -> list[subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: vm(args, url), cases))


def test_every_command_has_valid_arguments_here() -> None:
    assert set(LEAVES) == set(VALID) | NO_DAEMON_NEEDED


def test_every_command_with_an_unknown_option_is_a_usage_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    cases = [[*name.split(), *VALID.get(name, []), "--no-such-option"] for name in sorted(LEAVES)]
    for args, out in zip(cases, _run_all(cases, url), strict=True):
        line = _fails_in_one_line(args, out)
        assert out.returncode == 2, line
        assert "unrecognized arguments: --no-such-option" in line, line


def test_input_a_command_refuses_is_a_usage_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: exit 2 proves nothing was sent
    for args, out in zip(REFUSED, _run_all(REFUSED, url), strict=True):
        assert out.returncode == 2, (args, out.stderr)
        _fails_in_one_line(args, out)


def test_a_limit_error_names_the_flag_once() -> None:
    out = vm(["run", "-e", "1", "--mem-mb", "2"], f"http://127.0.0.1:{free_port()}")
    assert _fails_in_one_line([], out) == "vm-system: error: --mem-mb must be at least 4, got 2"


def test_every_command_that_needs_a_daemon_exits_4_when_none_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    cases = [[*name.split(), *args] for name, args in sorted(VALID.items())]
    for args, out in zip(cases, _run_all(cases, url), strict=True):
        line = _fails_in_one_line(args, out)
        assert out.returncode == 4, line
        assert line.startswith(f"vm-system: error: no vm-system daemon at {url} (connection refused)"), line


def _help(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_help().split())


def test_every_help_that_lists_exit_codes_lists_them_all() -> None:
    listing = ("0 ok, 1 script error, 2 usage error, 3 a limit stopped the script, "
               "4 no daemon answered, 130 interrupted")
    assert listing in _help(build_parser())
    for name in VALID:
        assert listing in _help(LEAVES[name]), name


def test_one_unit_word_for_memory() -> None:
    texts = [_help(build_parser()), *(_help(p) for p in LEAVES.values())]
    assert not [t for t in texts if " MB" in t or "megabyte" in t.lower()]
    assert "memory limit in MiB" in _help(LEAVES["run"])


@pytest.mark.parametrize("args", [["ops", "health"], ["exec", "repl", U, "1"]])
def test_a_daemon_that_never_answers_is_exit_4_too(args: list[str]) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        out = vm([*args, "--timeout", "0.5"], url)
    assert out.returncode == 4
    assert "did not answer in time" in _fails_in_one_line(args, out)
