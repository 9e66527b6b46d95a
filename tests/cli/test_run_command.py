"""`vm-system run` as a user runs it: a real process, its output and its exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def vm(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor.adapters.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_hello_example_runs_with_no_daemon() -> None:
    out = vm("run", "examples/hello.js")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "hello, vm-system",
        "an object: { engine: 'QuickJS', host: 'wasmtime', limits: [ 'cpu', 'wall', 'memory' ] }",
        "6765",
    ]


def test_module_example() -> None:
    out = vm("run", "examples/async.mjs")
    assert out.returncode == 0, out.stderr
    # A module's value is its namespace.
    assert out.stdout == "settled inside the sandbox\n[Object: null prototype] { answer: 42 }\n"


@pytest.mark.registry
def test_typescript_example() -> None:
    """Needs the real npm registry the first time (the transpiler is fetched into the user's
    cache directory)."""
    out = vm("run", "examples/shapes.ts")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "circle 3.14\nsquare 4.00\n[Object: null prototype] { total: 7.141592653589793 }\n"


def test_eval_prints_the_value() -> None:
    out = vm("run", "-e", "[1, 2].map(x => x * 21)")
    assert (out.returncode, out.stdout) == (0, "[ 21, 42 ]\n")


def test_script_error_exits_1_with_the_error_on_stderr() -> None:
    out = vm("run", "-e", "console.log('before'); null.x")
    assert out.returncode == 1
    assert out.stdout == "before\n"
    assert out.stderr.startswith("Uncaught TypeError: ")


def test_limit_exits_3() -> None:
    out = vm("run", "examples/runaway.js", "--wall-ms", "200")
    assert out.returncode == 3
    assert out.stdout == "spinning...\n"
    assert "error: timeout: wall-clock limit of 200 ms exceeded" in out.stderr


@pytest.mark.parametrize(("flag", "kind"), [("--cpu-ms", "cpu_limit"), ("--max-events", "event_limit")])
def test_each_limit_flag_applies(flag: str, kind: str) -> None:
    out = vm("run", "-e", "for (;;) console.log(1)", flag, "50", "--json")
    assert out.returncode == 3
    assert json.loads(out.stdout)["error"]["kind"] == kind


def test_memory_and_output_flags() -> None:
    mem = vm("run", "-e", "const a = []; for (;;) a.push(new Array(1e5).fill(0))", "--mem-mb", "16")
    assert mem.returncode == 3 and "memory_limit" in mem.stderr
    output = vm("run", "-e", "console.log('x'.repeat(5000))", "--max-output-kb", "1")
    assert output.returncode == 3 and "output_limit" in output.stderr


def test_json_output_is_the_whole_outcome() -> None:
    out = vm("run", "-e", "console.log('hi'); ({answer: 42})", "--json")
    assert out.returncode == 0
    doc = json.loads(out.stdout)
    assert doc["status"] == "ok"
    assert doc["value"]["json"] == {"answer": 42}
    assert [e["type"] for e in doc["events"]] == ["console", "value"]
    assert set(doc["metrics"]) == {"wall_ms", "cpu_ms", "fuel", "peak_memory_bytes", "output_bytes", "events",
                                   "host_calls", "timers_fired", "timers_cancelled"}


def _one_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_unusable_inputs_give_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty.js").write_text("  \n")
    (tmp_path / "latin1.js").write_bytes(b"console.log('caf\xe9')")
    cases = {
        "missing": (["run", str(tmp_path / "missing.js")], "no such file"),
        "directory": (["run", str(tmp_path)], "is a directory"),
        "empty": (["run", str(tmp_path / "empty.js")], "is empty"),
        "bad utf-8": (["run", str(tmp_path / "latin1.js")], "not valid UTF-8"),
        "empty -e": (["run", "-e", ""], "empty"),
        "zero limit": (["run", "-e", "1", "--cpu-ms", "0"], "--cpu-ms"),
        "not a number": (["run", "-e", "1", "--wall-ms", "soon"], "invalid int value"),
        "both sources": (["run", "x.js", "-e", "1"], "not allowed with"),
        "no command": ([], "required"),
    }
    for name, (args, expected) in cases.items():
        out = vm(*args)
        assert out.returncode == 2, name
        assert expected in _one_line(out), name
        assert out.stdout == "", name


def test_help_describes_exit_codes() -> None:
    out = vm("run", "--help")
    assert out.returncode == 0
    assert "0 ok, 1 script error, 2 usage error, 3 a limit stopped the script" in " ".join(out.stdout.split())


def test_a_timer_runs_before_the_value_is_printed() -> None:
    out = vm("run", "-e", "setTimeout(() => console.log('late'), 100); 'now'")
    assert (out.returncode, out.stdout) == (0, "late\n'now'\n"), out.stderr


def test_a_module_that_can_never_resume_exits_1_at_once(tmp_path: Path) -> None:
    script = tmp_path / "stuck.mjs"
    script.write_text("await new Promise(() => {});\n")
    out = vm("run", str(script), "--json")
    assert out.returncode == 1
    assert json.loads(out.stdout)["error"]["kind"] == "deadlock"
